"""The distillation loss a rank trains a student with (Hinton, Vinyals and Dean, 2015).

Classification: ``alpha · KL(softmax(t / T) ‖ softmax(s / T)) · T² + (1 − alpha) · CE(s, y)``,
where ``s`` are the student's logits, ``t`` the teacher's (precomputed into the run folder, see
:mod:`driftloop.train.distill`), ``T`` the temperature and ``y`` the labels. The ``T²`` keeps
the soft term's gradients on the scale of the hard term's whatever ``T`` is.

Regression: ``alpha · MSE(s, t) + (1 − alpha) · MSE(s, y)`` on the standardised target.

Examples
--------
>>> import torch
>>> s = torch.tensor([[2.0, 0.0], [0.0, 1.0]]); y = torch.tensor([0, 1])
>>> loss = DistillLoss("binary", temperature=2.0, alpha=0.5)
>>> round(float(loss(s, s.clone(), y)), 4)      # a student equal to its teacher: CE only
0.11
>>> round(float(loss(s, -s, y)), 4) > 0.11      # a teacher that disagrees pulls it away
True
>>> DistillLoss("regression", 1.0, 1.0)(torch.ones(3, 1), torch.zeros(3), torch.ones(3))
tensor(1.)

References
----------
Hinton, G., Vinyals, O. and Dean, J. (2015). Distilling the knowledge in a neural network.
arXiv:1503.02531.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class DistillLoss:
    """``loss(student_out, teacher_out, target)``: the mean distillation loss of a batch.

    Parameters
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    temperature
        ``T`` > 0 that softens both distributions (classification only).
    alpha
        Weight of the teacher term in [0, 1]; ``1 − alpha`` weighs the labels.
    """

    def __init__(self, task: str, temperature: float, alpha: float) -> None:
        self.task, self.temperature, self.alpha = task, float(temperature), float(alpha)

    def __call__(
        self, out: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        if len(target) == 0:
            return out.sum() * 0.0  # an empty last batch still joins DDP's all-reduce
        if self.task == "regression":
            pred = out.squeeze(-1)
            soft = F.mse_loss(pred, teacher.to(pred.dtype))
            hard = F.mse_loss(pred, target)
        else:
            t = self.temperature
            soft = F.kl_div(F.log_softmax(out / t, dim=1),
                            F.log_softmax(teacher.to(out.dtype) / t, dim=1),
                            reduction="batchmean", log_target=True) * (t * t)
            hard = F.cross_entropy(out, target)
        return self.alpha * soft + (1.0 - self.alpha) * hard


__all__ = ["DistillLoss"]
