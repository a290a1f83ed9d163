"""A Streamlit session driven by a bare websocket client (no browser): the server-hole tests probe with it and
benchmarks/browser.py --raw loads the server with it."""

from __future__ import annotations

import threading
import time

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


class RawSession:
    """A Streamlit session driven by a bare websocket client, as a probing script would (no browser)."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.connection = connect(
            url.replace("http://", "ws://") + "/_stcore/stream",
            subprotocols=["streamlit"],
            max_size=None,
            max_queue=None,  # unread replies to the flood must not stall the socket (the server then drops it)
            ping_interval=None,  # a probing script sends no keepalives (on a loaded CI machine their 20 s pong
            # deadline, not the server, failed the test); run()'s own timeout bounds each wait
        )
        self.lock = threading.Lock()

    def __enter__(self) -> RawSession:
        self.ws = self.connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.connection.__exit__(*exc)

    def send(self, message: BackMsg) -> None:
        with self.lock:
            self.ws.send(message.SerializeToString())

    def run(self, query_string: str, page_name: str = "", timeout: float = 120) -> list:
        """Run the app (``rerun_script``) and return the elements its last run drew, following the reruns a
        ``switch_page`` starts (a page asked for by name hands over to the entry point, which opens it)."""
        message = BackMsg()
        message.rerun_script.query_string = query_string
        message.rerun_script.page_name = page_name
        self.send(message)
        elements, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            forward = ForwardMsg()
            forward.ParseFromString(self.ws.recv(timeout=timeout))
            kind = forward.WhichOneof("type")
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                elements.append(forward.delta.new_element)
            elif kind == "script_finished":
                if forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    return elements
                elements = []  # a switch_page or st.rerun: the run that follows draws the page
        raise AssertionError(f"the script did not finish within {timeout} s")

    def clear_cache(self) -> None:
        message = BackMsg()
        message.clear_cache = True
        self.send(message)
