"""Default WebSocket limits: one named constant each, the close code it
produces and why. ``FrameParser`` takes each as a keyword to override."""

from __future__ import annotations

#: 1009: the largest message (reassembled from its fragments and inflated
#: when compressed) a FrameParser buffers; 16 MiB, uvicorn's ``--ws-max-size``
#: default, so apps moving to fastbase keep the bound they were tested with.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
