import pytest
import torch

from dlx.engine.optimization import Optimization, OptimizerSetup
from dlx.engine.precision import Precision


@pytest.mark.parametrize("clip_value", [None, 1e6])
def test_a_log_step_measures_the_gradient_norm_of_all_parameters_together(clip_value):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimization = Optimization(
        [OptimizerSetup(optimizer, None, "step")], Precision("32", torch.device("cpu")), clip_value
    )
    loss = model(torch.randn(4, 8)).square().mean()
    optimization.begin_batch(1, True, measure_grad_norm=True)
    optimization.backward(loss)
    expected = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    optimization.step()
    assert optimization.grad_norm == pytest.approx(float(expected), rel=1e-6)
