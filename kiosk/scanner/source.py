"""Where the scanner's frames come from, as plain data: the supervisor needs this, not OpenCV.

The scanner's supervisor process never opens the camera or decodes (see service.py), so it imports
this module rather than capture.py, and NumPy and OpenCV (~50 MB) load only in the decode child.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class SourceSpec:
    """Where frames come from: kind "camera" (OpenCV index or /dev/v4l/by-id path) or "video" (a file)."""
    kind: str
    target: str
    width: int = 640
    height: int = 480
    fps: int = 15
    loop: bool = False
    # The demo's looping receipt video: report its codes only while the scan screen is open (it asks for
    # the preview), so the demo can be walked through without a receipt turning up every few seconds.
    scans_only_when_watched: bool = False

    def describe(self) -> str:
        return f"camera {self.target}" if self.kind == "camera" else f"video {os.path.basename(self.target)}"
