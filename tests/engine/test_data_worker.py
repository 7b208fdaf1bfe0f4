import os

import pytest
import torch

from dlx.data.digits import DigitsData
from dlx.errors import DlxError
from tests.helpers import train_run


class _DiesInWorker(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, index):
        if index >= 8 and torch.utils.data.get_worker_info() is not None:
            os._exit(1)  # the worker process dies, as when the kernel kills it for memory
        return torch.zeros(1, 8, 8), 0


class DyingWorkerData(DigitsData):
    """Digits whose training loader is a multi-process DataLoader with a worker that dies."""

    def loader(self, split, epoch=0, start_batch=0, shuffle=None):
        if split != "train":
            return super().loader(split, epoch, start_batch, shuffle)
        return torch.utils.data.DataLoader(_DiesInWorker(), batch_size=8, num_workers=1)


def test_a_dying_data_worker_is_a_clear_error_naming_the_data_set_not_a_hang():
    with pytest.raises(DlxError, match="worker of data set 'DyingWorkerData' died.*num_workers=0"):
        train_run("data._target_=tests.engine.test_data_worker.DyingWorkerData", "trainer.max_epochs=1")
