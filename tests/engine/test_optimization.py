import weakref

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


def test_the_last_steps_graph_lives_through_the_next_forward_and_goes_before_its_backward():
    # The lifetime of `loss` in a hand-written loop (scripts/bench measures the speed it is worth): the
    # graph is kept after its backward and released before the next one runs.
    model = torch.nn.Linear(4, 2)
    optimization = Optimization(
        [OptimizerSetup(torch.optim.SGD(model.parameters(), lr=0.1), None, "step")],
        Precision("32", torch.device("cpu")),
    )
    inputs = torch.randn(3, 4)
    optimization.begin_batch(1, True, measure_grad_norm=False)
    first = model(inputs).square().mean()
    optimization.backward(first)
    optimization.step()
    first_released = weakref.ref(first)
    del first
    assert first_released() is not None, "the graph outlives its step until the next forward"

    optimization.begin_batch(1, True, measure_grad_norm=False)
    second = model(inputs).square().mean()
    during_backward = []
    second.register_hook(lambda grad: during_backward.append(first_released() is None))
    optimization.backward(second)
    assert during_backward == [True], "the last step's graph is released before this backward"
    assert optimization.last_graph is second
