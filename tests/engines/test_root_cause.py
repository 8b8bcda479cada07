"""Which failed rank a parallel run names: the root cause, not a rank whose collective failed because of it. The
logs are real: a tiny Wan run with parallel=cfg2 over gloo where rank 1 died by fault injection (os._exit(3)) and
rank 0's all_gather then saw the peer's socket close. In CI both exits once landed in one poll and rank 0 was named."""

from pathlib import Path

from diffexp.engines.distributed.launch import root_cause_first

RANKS = Path(__file__).resolve().parents[1] / "fixtures" / "ranks"


def tails() -> dict[int, list[str]]:
    return {
        0: (RANKS / "rank0_after_peer_died.log").read_text().splitlines(),
        1: (RANKS / "rank1_fault.log").read_text().splitlines(),
    }


def test_the_rank_that_died_first_is_named_though_seen_second():
    seen = [(0, "exited with code 1"), (1, "exited with code 3")]  # both in one poll: index order
    assert root_cause_first(seen, tails()) == [(1, "exited with code 3"), (0, "exited with code 1")]


def test_the_order_seen_stands_when_the_first_failure_is_its_own():
    seen = [(1, "exited with code 3"), (0, "exited with code 1")]
    assert root_cause_first(seen, tails()) == seen


def test_when_every_rank_failed_on_a_peer_the_first_seen_is_named():
    peer = tails()[0]
    seen = [(1, "exited with code 1"), (0, "exited with code 1")]
    assert root_cause_first(seen, {0: peer, 1: peer}) == seen
    assert root_cause_first([(0, "was killed by SIGKILL")], {0: []}) == [(0, "was killed by SIGKILL")]
