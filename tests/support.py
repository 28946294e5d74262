"""Helpers shared by tests that interrupt and resume training runs."""

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
