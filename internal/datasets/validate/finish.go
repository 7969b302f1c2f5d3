package validate

import "bytes"

// finishV4 checks a parsed v4 pair, classifies it and records it in c and
// the aggregator. When the example should become a sample it is returned
// (ok) with whether it is the first trainable example of its conversation.
func (p *parser) finishV4(pr *v4Pair, errsBefore int, needConvID bool, c *convState) (ex Example, first, ok bool) {
	p.agg.totalPairs++
	c.pairs++
	p.checkPair(pr, needConvID)
	if p.sink.errorCount > errsBefore {
		p.agg.invalid++
		return
	}
	if c.persona == "" && pr.persona.len() > 0 {
		c.persona = p.agg.internStr(p.bytesOf(pr.persona))
	}
	if c.arc == "" && pr.arc.len() > 0 {
		c.arc = p.agg.internStr(p.bytesOf(pr.arc))
	}
	if c.topic == "" && pr.topic.len() > 0 {
		c.topic = p.agg.internStr(p.bytesOf(pr.topic))
	}
	if !pr.hasTarget || len(bytes.TrimSpace(p.bytesOf(pr.target))) == 0 {
		p.agg.skipped++
		p.sink.warnf(pr.line, p.field("target_response"), WarnSkippedNoTarget, "training pair without a target_response (null, missing or empty) skipped: it is not a trainable example")
		return
	}
	if !p.buildV4(pr) {
		p.agg.invalid++
		return
	}
	first = c.trainable == 0
	turns := p.exampleStats(pr.line)
	c.trainable++
	c.turns = max(c.turns, int32(turns))
	if p.agg.wantSample(first) {
		return p.materialize(), first, true
	}
	return
}
