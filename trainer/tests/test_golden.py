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


def test_agent_reads_the_golden_claim_answer():
    from brightrun_trainer.agent import job_config

    golden = json.loads((GOLDEN / "agent-protocol.json").read_text())
    job = golden["claim"]["response"]["job"]
    cfg = job_config(job["config"], device="cpu")
    assert cfg.base_model == job["config"]["base_model"]
    assert cfg.max_seq_length == job["config"]["max_seq_length"]
    assert cfg.lora_rank == job["config"]["lora_rank"]


def test_fake_server_schemas_come_from_the_golden_file():
    import fakeserver

    golden = json.loads((GOLDEN / "agent-protocol.json").read_text())
    assert set(fakeserver.SCHEMAS["heartbeat"]) == set(golden["heartbeat"]["request"])
    assert fakeserver.POINT_KEYS == set(golden["metrics"]["request"]["points"][0])
