from tests.conftest import World


def test_grassroots_record_goes_all_the_way_to_accepted(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    assert w.state("G1") == "accepted"
