"""Helpers shared by tests: interrupting and resuming runs; prompt/response records from demo text."""

import json

from domix.train.callbacks import Callback

PERF = ("perf/", "time/")  # wall-clock metrics: the only ones a resumed run may change


class Interrupt(Callback):
    """Simulates a killed job: raises once the run reaches ``at`` completed steps."""

    name = "interrupt"

    def __init__(self, at):
        self.at = at

    def on_step_start(self, trainer, step):
        if step == self.at:
            raise KeyboardInterrupt


def metrics_rows(out_dir):
    """The run's metrics.jsonl rows without the wall-clock metrics."""
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(PERF)} for r in rows]


RECORD_FIELDS = dict(text="output", id=None, domain="category", prompt=["instruction", "input"])


def demo_records(demo_corpus, per_domain=30):
    """Instruction-style records from real demo text: continue a passage of a given domain."""
    out, seen = [], {}
    for row in demo_corpus.read(["text", "domain"]).to_pylist():
        if seen.setdefault(row["domain"], 0) >= per_domain:
            continue
        seen[row["domain"]] += 1
        words = row["text"].split()
        out.append({"instruction": f"Continue this {row['domain']} text.", "input": " ".join(words[:25]),
                    "output": " ".join(words[25:45]) or "(nothing)", "category": row["domain"]})
    return out


def records_corpus(records, folder):
    """``records`` written as JSONL in ``folder`` and built into a prompt/response corpus there."""
    from domix.corpus import Fields, ReadReport, SplitConfig, read, write_corpus

    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    docs = read("jsonl", path, Fields(**RECORD_FIELDS), ReadReport())
    return write_corpus(docs, folder / "corpus", "records", ReadReport(), SplitConfig(validation_fraction=0.2),
                        records=True)
