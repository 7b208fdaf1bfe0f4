"""dlx's trainer and the plain PyTorch loop of scripts/bench must produce the same loss at every step: the
trainer adds bookkeeping, never arithmetic. (Their speed is compared in scripts/bench, not here.)"""

from scripts.bench import loops

TINY_MLP = loops.Case(
    "tiny mlp", [*loops.CASES[0].overrides, "+data.train_samples=4000"], steps=60, segment=10
)


def test_dlx_and_raw_loop_losses_agree_to_five_decimals(tmp_path):
    case = TINY_MLP
    raw = loops.raw_loop(loops.compose(case, tmp_path), fused=True)  # the kernel dlx picks
    ours = loops.dlx_loop(loops.compose(case, tmp_path))
    assert len(raw.losses) == len(ours.losses) == 60
    assert raw.losses[0] > raw.losses[-1]  # it trained: the comparison is not of constants
    assert loops.max_loss_difference(raw, ours) < 5e-6
    assert list(tmp_path.glob("*/*/metrics.jsonl")), "the dlx run logged as usual"


def test_loops_taking_turns_train_as_they_do_alone_and_are_timed_per_turn(tmp_path, monkeypatch):
    case = TINY_MLP
    alone = loops.raw_loop(loops.compose(case, tmp_path), fused=True)
    turns_ended = []
    stop = loops.Clock.stop

    def recording_stop(clock):
        turns_ended.append(clock)
        stop(clock)

    monkeypatch.setattr(loops.Clock, "stop", recording_stop)
    ours_result, raw_result = loops.lockstep(
        [
            lambda clock: loops.dlx_loop(loops.compose(case, tmp_path), clock),
            lambda clock: loops.raw_loop(loops.compose(case, tmp_path), fused=True, clock=clock),
        ],
        case.segment,
    )
    first, second = turns_ended[0], turns_ended[1]
    assert first is not second and turns_ended == [first, second] * 6, "the loops took turns"
    assert raw_result.losses == alone.losses
    assert loops.max_loss_difference(raw_result, ours_result) < 5e-6
    # Steps 1-59 are timed (step 0 is not) in turns of 10 steps: five of 10, one of 9.
    assert len(raw_result.segment_ms) == len(ours_result.segment_ms) == 6
    assert all(ms > 0 for ms in raw_result.segment_ms + ours_result.segment_ms)
    assert 0.2 < loops.throughput_ratio([raw_result], [ours_result]) < 5
