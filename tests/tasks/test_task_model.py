import pytest
import torch
from torch import nn

from dlx.tasks.base import Task
from dlx.tasks.classification import ClassificationTask


def test_the_model_is_a_registered_submodule_that_a_wrapper_can_replace():
    task = ClassificationTask(nn.Linear(4, 3), num_classes=3)
    assert list(task.state_dict()) == ["model.weight", "model.bias"]
    wrapper = nn.Sequential(task.model)  # as DDP or torch.compile wrap it
    task.model = wrapper
    assert task.model is wrapper
    assert list(task.state_dict()) == ["model.0.weight", "model.0.bias"]
    assert task.training_step((torch.randn(2, 4), torch.tensor([0, 2]))).shape == ()


def test_a_task_without_a_model_raises_attribute_error_as_for_any_missing_attribute():
    class Modelless(Task):
        def __init__(self):
            nn.Module.__init__(self)

    assert not hasattr(Modelless(), "model")
    with pytest.raises(AttributeError, match="'Modelless' object has no attribute 'model'"):
        _ = Modelless().model
