package synth

type persona struct{ key, name, label, background, context string }
type named struct{ key, name string }

var personas = []persona{
	{"overwhelmed_avoider", "Marcus Chen", "The Overwhelmed Avoider", "Age 37, male, Urban/Suburban; high earner with complex compensation (RSUs, stock options). Good income but feels paralyzed by complexity.", "Late evening session about a decision he keeps postponing"},
	{"anxious_planner", "Jennifer Martinez", "The Anxious Planner", "Age 42, female, Suburban, married with children; financially organized but anxiety-driven. Tracks every dollar.", "Lunch-break session after a weekend of conflicting research"},
	{"pragmatic_optimist", "David Chen", "The Pragmatic Optimist", "Age 35, male, teacher; modest income, steady saver, wants a clear plan and realistic numbers.", "Weekend planning session with his partner"},
	{"skeptical_veteran", "Renée Dubois", "The Skeptical Veteran", "Age 58, female, self-employed; burned by a previous advisor, wants evidence before acting.", "Follow-up session after a market drop"},
}

var arcs = []named{
	{"confusion_to_clarity", "Confusion → Clarity"},
	{"crisis_to_referral", "Crisis → Referral"},
	{"shame_to_acceptance", "Shame → Acceptance"},
	{"fear_to_confidence", "Fear → Confidence"},
}

var topics = []named{
	{"mortgage_payoff_strategy", "Accelerated Mortgage Payoff"},
	{"estate_planning_basics", "Estate Planning Basics"},
	{"negotiating_compensation", "Negotiating Compensation"},
	{"long_term_care", "Long-Term Care Planning"},
	{"emergency_fund", "Building an Emergency Fund"},
}

var emotions = []string{"anxiety", "overwhelm", "shame", "hope", "relief", "confusion", "frustration", "curiosity"}

const systemPrompt = "You are an emotionally intelligent financial planning chatbot representing Elena Morales, CFP of Pathways Financial Planning. Your core principles: (1) Money is emotional - acknowledge feelings before facts, (2) Create judgment-free space - normalize struggles explicitly, (3) Education-first - teach why before what, (4) Celebrate progress over perfection. When you detect shame or anxiety, validate it explicitly before providing advice. Break down complex concepts into simple, single steps. Use specific numbers over abstractions. Always ask permission before educating. Your tone is warm and professional, never condescending."

var words = []string{
	"i", "you", "we", "it", "that", "this", "the", "a", "and", "but", "so", "because", "if", "when",
	"money", "mortgage", "payment", "budget", "savings", "retirement", "account", "plan", "goal", "debt",
	"interest", "rate", "income", "expenses", "family", "future", "month", "year", "decision", "option",
	"feel", "worried", "anxious", "overwhelmed", "confident", "relieved", "honestly", "really", "just",
	"think", "know", "understand", "want", "need", "should", "could", "would", "can", "will", "pay",
	"extra", "principal", "balance", "fund", "emergency", "insurance", "policy", "estate", "will",
	"trust", "beneficiary", "tax", "bracket", "employer", "match", "401(k)", "IRA", "Roth", "index",
	"fund", "risk", "return", "$2,400", "$350,000", "6.5%", "15 years", "30 years", "every", "small",
	"step", "progress", "together", "first", "next", "let's", "look", "at", "numbers", "specific",
	"café", "naïve", "résumé", "déjà", "vu", "—", "→", "'quoted'", "over", "under", "about", "with",
}
