"""How a handler's closure travels to a Ray replica (hub.cluster.shipping), without Ray: the front end's objects
become proxies whose calls come back in order, a Cancel reads as a set Event there, and files travel as bytes when
the replica shares no disk with the front end."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from hub.cluster.shipping import Call, Channel, file_roots, loads_result


class Progress:  # stands in for gr.Progress: the shipper recognises gradio's Progress by module and name
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))


Progress.__module__ = "gradio.helpers"


def replica_side(payload: bytes, share_files: bool = True):
    """Unpickle as a replica would; messages it sends are collected in order."""
    sent = []
    call = Call(sent.append, share_files)
    return call, call.loads(payload), sent


def deliver_all(channel: Channel, sent: list) -> None:
    for kind, message in sent:
        assert kind == "callback"
        channel.deliver(message)


def test_progress_queue_and_event_calls_come_back_to_the_front_end_in_order():
    progress, events, done = Progress(), queue.Queue(), threading.Event()

    def work(lease):
        progress(0.5, desc="Transcribing")
        events.put(("step", (1, 4)))
        events.put(("step", (2, 4)))
        done.set()
        return "ok"

    channel = Channel()
    call, fn, sent = replica_side(channel.dumps(work))
    assert fn(None) == "ok"
    assert not done.is_set() and events.empty(), "nothing happens in the front end until the messages arrive"
    deliver_all(channel, sent)
    assert progress.calls == [((0.5,), {"desc": "Transcribing"})]
    assert [events.get_nowait(), events.get_nowait()] == [("step", (1, 4)), ("step", (2, 4))]
    assert done.is_set()
    assert channel.watched_events() == [], "an Event the replica set is not a stop request"


def test_a_stop_in_the_front_end_reads_as_a_set_event_in_the_replica():
    stop = threading.Event()
    should_stop = stop.is_set  # what SD's pipeline callback is given

    channel = Channel()
    call, fn, _ = replica_side(channel.dumps(lambda: should_stop()))
    assert channel.watched_events() == [stop], "the front end watches the Event to cancel the call"
    assert fn() is False
    call.stopped.set()  # Ray cancelled the call: Cancel pressed, page closed
    assert fn() is True


def test_locks_are_recreated_and_a_context_travels_as_its_facts(settings):
    from hub.context import DemoContext
    from hub.options import DemoOptions
    from hub.registry import load_demos

    (h,) = load_demos(("yolo_detect",))
    ctx = DemoContext(object(), settings, h.spec, DemoOptions({"max_video_frames": 7}))
    lock = threading.Lock()

    def work(lease):
        with lock:
            return ctx.name, ctx.options.max_video_frames, ctx.settings.device

    _, fn, _ = replica_side(Channel().dumps(work))
    assert fn(None) == ("yolo_detect", 7, settings.device)


@pytest.fixture
def upload(tmp_path):
    """A file in gradio's upload folder and an output path in a request folder, as a tab's handler has them."""
    gradio_root, hub_root = file_roots()
    folder = Path(gradio_root) / f"test-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    src = folder / "clip.wav"
    src.write_bytes(b"RIFF fake audio")
    out = Path(hub_root) / "test_demo" / uuid.uuid4().hex[:8] / "result.mp4"
    out.parent.mkdir(parents=True)
    yield src, out
    src.unlink()
    folder.rmdir()
    if out.exists():
        out.unlink()
    out.parent.rmdir()


def test_files_travel_as_bytes_when_the_replica_shares_no_disk(upload):
    src, out = upload
    elsewhere = "/etc/hostname"

    def work(lease):
        data = Path(str(src)).read_bytes()
        out.write_bytes(data.upper())
        return str(src), out, elsewhere, data

    channel = Channel(share_files=False)
    call, fn, _ = replica_side(channel.dumps(work), share_files=False)
    try:
        local_src, local_out, other, data = fn(None)
        assert data == b"RIFF fake audio", "the upload's bytes arrived with the call"
        assert local_src != str(src) and Path(local_src).name == "clip.wav", "read from the replica's own copy"
        assert local_out != out and local_out.name == "result.mp4" and not out.exists()
        assert other == elsewhere, "paths outside the request folders are left alone"
        assert call.written_files() == [(str(out), b"RIFF FAKE AUDIO")], "only the new file goes back"
        assert call.written_files() == [], "a file already sent is not sent twice"
        back = loads_result(call.dumps_result((local_src, local_out)))
        assert back == (str(src), out), "paths in the result are the front end's again"
    finally:
        call.close()
    assert not call.scratch.exists(), "the call's scratch folder is removed"


def test_on_one_machine_paths_are_passed_as_they_are(upload):
    src, out = upload
    call, fn, _ = replica_side(Channel(share_files=True).dumps(lambda: (str(src), out)))
    assert fn() == (str(src), out) and call.scratch is None


def test_the_front_end_writes_back_only_inside_the_request_folders(upload, caplog):
    from hub.cluster.backend import _write_back

    _, out = upload
    _write_back(str(out), b"video")
    assert out.read_bytes() == b"video"
    outside = Path(tempfile.gettempdir()) / f"not-a-request-{os.getpid()}.txt"
    _write_back(str(outside), b"x")
    assert not outside.exists() and "outside the request folders" in caplog.text


def test_a_resident_cache_is_made_once_per_replica_and_kept_between_calls():
    from demos.sam_segment.store import EmbeddingStore

    store = EmbeddingStore(per_session=2, total=5)
    channel = Channel()
    first = replica_side(channel.dumps(lambda: store))[1]()
    second = replica_side(channel.dumps(lambda: store))[1]()
    assert first is second and first is not store, "the replica's own store, the same for every call"
    assert (first.per_session, first.total) == (2, 5)
    store2 = EmbeddingStore()
    other = replica_side(channel.dumps(lambda: store2))[1]()
    assert other is not first, "another store of the front end is another store in the replica"
