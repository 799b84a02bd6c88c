"""A store whose every operation first lets other green threads run, as a real MongoDB
client does while it waits on its socket: races between instances happen as on a server."""
import eventlet


class Yielding:
    """A collection whose every call yields before it runs."""

    def __init__(self, collection):
        self._collection = collection

    def __getattr__(self, name):
        attribute = getattr(self._collection, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            eventlet.sleep(0)  # the request is on its way
            eventlet.sleep(0)  # the server works on it
            return attribute(*args, **kwargs)
        return call


def yielding(repository):
    """Wrap every collection attribute of ``repository`` (in place); returns it."""
    for name, value in list(vars(repository).items()):
        if type(value).__name__ == "Collection":
            setattr(repository, name, Yielding(value))
    return repository
