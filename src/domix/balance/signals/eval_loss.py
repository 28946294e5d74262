"""``eval_loss``: per-domain validation loss of the training domains at the end of a hold.

Methods that steer by held-out loss (Skill-It, Aioli) ask for it. It runs the trainer's evaluator
over the training domains' own validation sequences (the same fixed, capped set every time), and
counts the evaluation tokens as extra compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import SIGNALS, Signal


@SIGNALS.register("eval_loss")
class EvalLoss(Signal):
    masked_loss = True  # the evaluator's losses are the responses'
    def value(self, trainer) -> Any:
        if trainer.domain_evaluator is None:
            raise RuntimeError("the eval_loss signal needs the trainer's domain_evaluator (see domix.run)")
        result = trainer.domain_evaluator(trainer.model)
        self.extra["eval_tokens"] += int(result.tokens.sum())
        self.extra["forward_passes"] += int(np.ceil(len(trainer.domain_evaluator.dom) / trainer.domain_evaluator.batch_size))
        return result.loss.copy()
