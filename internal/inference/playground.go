package inference

import (
	"context"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// HeldOut is a held-out conversation from the model's validation split (the
// trainer's evaluation samples) with its reference answer.
type HeldOut struct {
	Messages  []Message `json:"messages"`
	Reference string    `json:"reference"`
}

// Playground is what the playground page starts from.
type Playground struct {
	SystemPrompt string    `json:"system_prompt"`
	Prompts      []HeldOut `json:"prompts"`
	SamplesFrom  string    `json:"samples_from,omitempty"`
}

// PlaygroundFor reads the held-out prompts the trainer generated samples
// for (eval.json, from the validation split) and the dataset's system
// prompt (the system message of those conversations).
func PlaygroundFor(m store.Model) Playground {
	p := Playground{Prompts: []HeldOut{}}
	ev := m.Artifacts.Eval
	if ev == nil {
		return p
	}
	if ev.SamplesFrom != nil {
		p.SamplesFrom = *ev.SamplesFrom
	}
	for _, s := range ev.Samples {
		msgs := s.Messages
		if len(msgs) == 0 && s.Prompt != "" {
			msgs = []jobdoc.Message{{Role: "user", Content: s.Prompt}}
		}
		var turns []Message
		for _, msg := range msgs {
			if msg.Role == "system" {
				if p.SystemPrompt == "" {
					p.SystemPrompt = msg.Content
				}
				continue
			}
			turns = append(turns, Message(msg))
		}
		if len(turns) > 0 {
			p.Prompts = append(p.Prompts, HeldOut{Messages: turns, Reference: s.Reference})
		}
	}
	return p
}

// PreferenceParams is a "which answer is better" vote.
type PreferenceParams struct {
	UserID    string
	Model     store.Model
	Messages  []Message // the conversation both sides answered (ending with the user's turn)
	LeftSide  string    // base | adapter
	LeftText  string
	RightText string
	Choice    string // left | right | tie
}

// SavePreference validates and stores a vote.
func (s *Service) SavePreference(ctx context.Context, p PreferenceParams) (store.Preference, error) {
	f := apperr.FieldErrors{}
	if p.LeftSide != "base" && p.LeftSide != "adapter" {
		f.Add("left_side", "use base or adapter")
	}
	if p.Choice != "left" && p.Choice != "right" && p.Choice != "tie" {
		f.Add("choice", "use left, right or tie")
	}
	if strings.TrimSpace(p.LeftText) == "" && strings.TrimSpace(p.RightText) == "" {
		f.Add("left_text", "send both answers")
	}
	if len(p.Messages) == 0 || p.Messages[len(p.Messages)-1].Role != "user" {
		f.Add("messages", "send the conversation both answers reply to, ending with the user's message")
	}
	if err := f.Err(); err != nil {
		return store.Preference{}, err
	}
	if err := Validate(p.Messages, &Params{MaxTokens: 1, TopP: 1}); err != nil {
		return store.Preference{}, err
	}
	pref := store.Preference{ID: uuid.NewString(), UserID: p.UserID, ModelID: p.Model.ID, Messages: p.Messages, LeftSide: p.LeftSide,
		LeftText: p.LeftText, RightText: p.RightText, Choice: p.Choice, CreatedAt: s.Now().UTC()}
	return pref, s.Store.PreferenceCreate(ctx, pref)
}

// PreferencePair is one line of the preference export, in the
// conversational form preference-tuning tools (e.g. TRL's DPOTrainer) read.
type PreferencePair struct {
	Prompt   []Message `json:"prompt"`
	Chosen   []Message `json:"chosen"`
	Rejected []Message `json:"rejected"`
}

// PreferencePairs turns votes into pairs; ties say nothing and are left out.
func PreferencePairs(prefs []store.Preference) []PreferencePair {
	out := []PreferencePair{}
	for _, p := range prefs {
		if p.Choice == "tie" {
			continue
		}
		prompt := p.Messages
		chosen, rejected := p.LeftText, p.RightText
		if p.Choice == "right" {
			chosen, rejected = rejected, chosen
		}
		out = append(out, PreferencePair{Prompt: prompt, Chosen: []Message{{Role: "assistant", Content: chosen}},
			Rejected: []Message{{Role: "assistant", Content: rejected}}})
	}
	return out
}

// PreferenceView is a stored vote as the page lists it.
type PreferenceView struct {
	store.Preference
	Prompt string `json:"prompt"` // the last user message
	Winner string `json:"winner"` // base | adapter | tie
}

// ViewPreference words a vote.
func ViewPreference(p store.Preference) PreferenceView {
	v := PreferenceView{Preference: p, Winner: "tie"}
	if msgs := p.Messages; len(msgs) > 0 {
		v.Prompt = msgs[len(msgs)-1].Content
	}
	other := map[string]string{"base": "adapter", "adapter": "base"}
	switch p.Choice {
	case "left":
		v.Winner = p.LeftSide
	case "right":
		v.Winner = other[p.LeftSide]
	}
	return v
}
