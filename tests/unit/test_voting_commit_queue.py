"""The committer answers a group's callers once it is stored, then announces it."""
import eventlet

from services.voting import commit


def test_callers_are_answered_before_the_group_is_announced_and_a_failed_one_is_survived(
        monkeypatch):
    log = []

    def commit_group(requests, context):
        def announce(request):  # as store_votes defers publish_batch, whose I/O yields
            eventlet.sleep(0)
            log.append(("announced", request))

        for request in requests:
            context.announcements.append(lambda request=request: announce(request))
        if "broken" in requests:
            context.announcements.append(lambda: 1 / 0)
        return [f"stored {request}" for request in requests]

    monkeypatch.setattr(commit, "commit_group", commit_group)
    queue = commit.CommitQueue(rules={})
    context = commit.CommitContext(store=None, dispatch=None, now=None, rules={})
    runner = eventlet.spawn(queue.run, context)

    def caller(request):
        answer = queue.submit([request])
        log.append(("answered", request))
        return answer

    first = eventlet.spawn(caller, "broken")
    assert first.wait() == ["stored broken"]
    assert log.index(("answered", "broken")) < log.index(("announced", "broken"))
    assert caller("next") == ["stored next"]  # the committer survived the failed announcement
    eventlet.sleep(0)
    assert ("announced", "next") in log and context.announcements is None
    queue.stop()
    runner.wait()
