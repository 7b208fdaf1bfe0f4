"""dlx's trainer and the plain PyTorch loop of scripts/bench must produce the same loss at every step: the
trainer adds bookkeeping, never arithmetic. (Their speed is compared in scripts/bench, not here.)"""

from scripts.bench import loops


def test_dlx_and_raw_loop_losses_agree_to_five_decimals(tmp_path):
    case = loops.Case("tiny mlp", [*loops.CASES[0].overrides, "+data.train_samples=4000"], steps=60)
    raw = loops.raw_loop(loops.compose(case, tmp_path), fused=True)  # the kernel dlx picks
    ours = loops.dlx_loop(loops.compose(case, tmp_path))
    assert len(raw.losses) == len(ours.losses) == 60
    assert raw.losses[0] > raw.losses[-1]  # it trained: the comparison is not of constants
    assert loops.max_loss_difference(raw, ours) < 5e-6
    assert list(tmp_path.glob("*/*/metrics.jsonl")), "the dlx run logged as usual"
