"""Golden files shared with the Go server (testdata/golden/): the trainer's
implementation must give exactly the server's answers."""

import json

from brightrun_trainer.data import validation_keys

from conftest import REPO_ROOT

GOLDEN = REPO_ROOT / "testdata" / "golden"


def test_split_rule_matches_the_server():
    cases = json.loads((GOLDEN / "split.json").read_text())
    assert len(cases) >= 10
    for c in cases:
        got = sorted(validation_keys(c["keys"], c["share"]))
        assert got == c["validation"], c["name"]
