"""OpenAI's fine-tuning guide, run with the official `openai` package
(unmodified, pinned in trainer/requirements-test.txt) against BrightRun's /v1.

Driven by e2e/openai_finetune_py_test.go in two phases:

  prepare: upload the file, bad input (each raises the SDK's exception class
           naming the parameter), a job cancelled and one paused and resumed
           before any agent runs, then the guide's job (legacy hyperparameters
           form with "auto" values); prints {"file": ..., "job": ...}
  train:   poll retrieve until succeeded, page list_events, list
           checkpoints, read the result file, chat with the fine-tuned model.

Settings come from the environment: BR_BASE_URL, BR_TOKEN, BR_OTHER_TOKEN,
BR_TRAIN, BR_BAD, BR_MODEL.
"""
import json
import os
import sys
import time

import openai
from openai import OpenAI


def check(cond, what):
    if not cond:
        raise SystemExit("FAILED: " + what)


def expect(exc_class, param, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_class as e:
        check(e.param == param, f"{fn.__qualname__}: param {e.param!r}, want {param!r} ({e.message})")
        check(param in e.message, f"{fn.__qualname__}: the message does not name {param}: {e.message}")
        return e
    raise SystemExit(f"FAILED: {fn.__qualname__} did not raise {exc_class.__name__}")


def wait_file(client, fid):
    deadline = time.time() + 120
    while True:
        f = client.files.retrieve(fid)
        if f.status != "uploaded" or time.time() > deadline:
            return f
        time.sleep(0.05)  # validation runs in the server's worker


def prepare(client, other, model):
    with open(os.environ["BR_TRAIN"], "rb") as fh:
        f = client.files.create(file=fh, purpose="fine-tune")
    check(f.id.startswith("file-") and f.purpose == "fine-tune", f"file: {f}")
    f = wait_file(client, f.id)
    check(f.status == "processed", f"file status {f.status}: {f.status_details}")
    check(any(x.id == f.id for x in client.files.list(purpose="fine-tune")), "files.list misses the file")

    with open(os.environ["BR_TRAIN"], "rb") as fh:
        expect(openai.BadRequestError, "purpose", client.files.create, file=fh, purpose="assistants")
    with open(os.environ["BR_BAD"], "rb") as fh:
        bad = wait_file(client, client.files.create(file=fh, purpose="fine-tune").id)
    check(bad.status == "error" and "line 3" in (bad.status_details or ""), f"bad file: {bad}")
    e = expect(openai.BadRequestError, "training_file", client.fine_tuning.jobs.create, model=model, training_file=bad.id)
    check("line 3" in e.message and e.code == "invalid_training_file", f"malformed line: {e.code} {e.message}")
    e = expect(openai.BadRequestError, "model", client.fine_tuning.jobs.create, model="gpt-4o-mini-2024-07-18", training_file=f.id)
    check(model in e.message and e.code == "model_not_found", f"unknown model: {e.message}")
    expect(openai.BadRequestError, "training_file", other.fine_tuning.jobs.create, model=model, training_file=f.id)
    expect(openai.BadRequestError, "hyperparameters.n_epochs", client.fine_tuning.jobs.create, model=model, training_file=f.id,
           hyperparameters={"n_epochs": 0})
    expect(openai.BadRequestError, "warmup", client.fine_tuning.jobs.create, model=model, training_file=f.id, extra_body={"warmup": 3})
    expect(openai.BadRequestError, "method.type", client.fine_tuning.jobs.create, model=model, training_file=f.id,
           method={"type": "reinforcement"})
    expect(openai.BadRequestError, "integrations", client.fine_tuning.jobs.create, model=model, training_file=f.id,
           integrations=[{"type": "wandb", "wandb": {"project": "p"}}])
    try:
        other.files.retrieve(f.id)
        raise SystemExit("FAILED: another user read the file")
    except openai.NotFoundError:
        pass

    c = client.fine_tuning.jobs.create(model=model, training_file=f.id, method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})
    check(c.id.startswith("ftjob-") and c.status == "queued", f"create: {c}")
    check(client.fine_tuning.jobs.cancel(c.id).status == "cancelled", "cancel")
    p = client.fine_tuning.jobs.create(model=model, training_file=f.id, suffix="paused")
    check(client.fine_tuning.jobs.pause(p.id).status == "paused", "pause")
    try:
        other.fine_tuning.jobs.resume(p.id)
        raise SystemExit("FAILED: another user resumed the job")
    except openai.NotFoundError:
        pass
    check(client.fine_tuning.jobs.resume(p.id).status == "queued", "resume")
    check(client.fine_tuning.jobs.cancel(p.id).status == "cancelled", "cancel after resume")

    # The guide's job: the legacy form, "auto" where the guide leaves values to us.
    j = client.fine_tuning.jobs.create(model=model, training_file=f.id, suffix="py-guide", seed=11, metadata={"sdk": "python"},
                                       hyperparameters={"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": "auto"})
    check(j.hyperparameters.n_epochs == 1 and j.hyperparameters.learning_rate_multiplier == 1 and j.seed == 11, f"job: {j}")
    listed = client.fine_tuning.jobs.list(metadata={"sdk": "python"})
    check([x.id for x in listed.data] == [j.id], f"list by metadata: {listed.data}")
    print(json.dumps({"file": f.id, "job": j.id}))


def train(client, job_id):
    deadline = time.time() + 480
    while True:
        j = client.fine_tuning.jobs.retrieve(job_id)
        if j.status in ("succeeded", "failed", "cancelled") or time.time() > deadline:
            break
        time.sleep(0.5)  # a real trainer process trains the job
    check(j.status == "succeeded", f"job ended {j.status}: {j.error}")
    check(j.fine_tuned_model.startswith("ft:") and ":py-guide:" in j.fine_tuned_model, f"fine_tuned_model {j.fine_tuned_model}")
    check(j.trained_tokens and j.trained_tokens > 0 and j.finished_at and j.result_files, f"job: {j}")

    events = list(client.fine_tuning.jobs.list_events(job_id, limit=2))  # the SDK follows after= page by page
    check(len(events) >= 6, f"{len(events)} events")
    check(any(e.type == "metrics" and e.data.get("train_loss") for e in events), "no metrics event")
    accs = [e.data.get("train_mean_token_accuracy") for e in events if e.type == "metrics" and e.data.get("train_loss")]
    check(accs and all(isinstance(a, float) and 0 <= a <= 1 for a in accs), f"train token accuracies: {accs}")
    check(all(a.created_at >= b.created_at for a, b in zip(events, events[1:])), "events are not newest first")
    check(len({e.id for e in events}) == len(events), "duplicate events across pages")

    cps = client.fine_tuning.jobs.checkpoints.list(job_id)
    check(cps.data and cps.data[0].fine_tuned_model_checkpoint == j.fine_tuned_model, f"checkpoints: {cps.data}")
    m = cps.data[0].metrics
    check(m.train_loss and m.full_valid_loss, f"checkpoint metrics: {m}")
    check(all(isinstance(v, float) and 0 <= v <= 1 for v in (m.train_mean_token_accuracy, m.valid_mean_token_accuracy,
                                                               m.full_valid_mean_token_accuracy)), f"checkpoint accuracies: {m}")
    csv = client.files.content(j.result_files[0]).text
    check(csv.startswith("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"), f"results: {csv[:200]}")
    rows = [r.split(",") for r in csv.strip().split("\n")[1:]]
    check(all(r[2] for r in rows if r[1]), f"results without train_accuracy: {csv[:300]}")
    # The guide's last step: use the fine-tuned model.
    chat = client.chat.completions.create(model=j.fine_tuned_model, max_tokens=8,
                                          messages=[{"role": "user", "content": "How should I start paying off my mortgage?"}])
    check(len(chat.choices) == 1 and chat.usage.completion_tokens >= 1, f"chat: {chat}")
    # A checkpoint id is a model too (the final one is the fine-tuned model).
    chat = client.chat.completions.create(model=cps.data[0].id, max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    check(chat.model == cps.data[0].id and chat.usage.completion_tokens >= 1, f"chat with {cps.data[0].id}: {chat}")
    check(client.models.retrieve(cps.data[0].id).id == cps.data[0].id, "models.retrieve of a checkpoint")
    print(json.dumps({"fine_tuned_model": j.fine_tuned_model, "events": len(events)}))


def main():
    env = os.environ
    client = OpenAI(base_url=env["BR_BASE_URL"], api_key=env["BR_TOKEN"], max_retries=0)
    other = OpenAI(base_url=env["BR_BASE_URL"], api_key=env["BR_OTHER_TOKEN"], max_retries=0)
    if sys.argv[1] == "prepare":
        prepare(client, other, env["BR_MODEL"])
    else:
        train(client, sys.argv[2])


if __name__ == "__main__":
    main()
