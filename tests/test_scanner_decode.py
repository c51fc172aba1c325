"""Decoding real generated images: each decoder, the chain, repeats, hints, and `kiosk scan --image`."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from kiosk.demo import generate, receipt_payloads, write_receipt_images
from kiosk.scanner.decoders import DecoderChain, Outcome, edge_steepness, make_decoder, to_grey
from kiosk.scanner.pipeline import Hint, HintTracker, RepeatFilter, ScanPipeline
from motcua.config import ScannerConfig
from tests.scanner_media import (
    abort_on_bomb,
    bent_receipt_frame,
    crumpled_receipt_frame,
    desk,
    motion_blur,
    receipt_frame,
)

REC = next(generate(1))
URL = receipt_payloads(REC)["url"]


@pytest.mark.parametrize("name", ["zxing", "pyzbar", "opencv"])
def test_each_decoder_reads_a_receipt_frame_and_nothing_on_an_empty_desk(name: str) -> None:
    dec = make_decoder(name)
    assert dec.decode(to_grey(receipt_frame(URL))).texts == [URL]
    assert dec.decode(to_grey(desk())).texts == []


def test_pyzbar_gets_grey_not_blue_channel() -> None:
    # A blue-ink code on yellow paper: in the blue channel alone ink and paper look alike.
    frame = receipt_frame(URL)
    paper = (frame == 240).all(axis=2) | (frame > 200).all(axis=2)
    frame[paper] = (40, 230, 250)
    assert make_decoder("pyzbar").decode(to_grey(frame)).texts == [URL]


def test_zxing_returns_the_plain_payload_with_control_characters_intact() -> None:
    payload = "000.00.21.H42-251125-0001\x1dAB12CD"  # GS separator, as some portals use
    out = make_decoder("zxing").decode(to_grey(receipt_frame(payload)))
    assert out.texts == [payload]


def test_chain_falls_back_when_the_first_decoder_misses() -> None:
    # A chain whose first decoder cannot see this code at all (OpenCV on a tiny code) still reads it.
    tiny = receipt_frame(URL, scale=2)
    assert make_decoder("opencv").decode(to_grey(tiny)).texts == []
    chain = DecoderChain(["opencv", "zxing"], fallback_every=1)
    out = chain.decode(to_grey(tiny))
    assert (out.texts, out.decoder) == ([URL], "zxing")


def test_zxing_retry_reads_motion_blur_the_default_binarizer_misses() -> None:
    blurred = to_grey(motion_blur(receipt_frame(URL, scale=5), 9, 0))
    assert make_decoder("zxing").decode(blurred).texts == []
    assert make_decoder("zxing_retry").decode(blurred).texts == [URL]
    out = DecoderChain(["zxing", "zxing_retry", "pyzbar", "opencv"], fallback_every=1).decode(blurred)
    assert (out.texts, out.decoder) == ([URL], "zxing_retry")


def test_zxing_unwarp_reads_a_bent_receipt_the_other_decoders_miss() -> None:
    bent = to_grey(bent_receipt_frame(URL, bow=-0.07))
    for name in ("zxing", "zxing_retry", "pyzbar", "opencv"):
        assert make_decoder(name).decode(bent).texts == [], name
    out = DecoderChain(["zxing", "zxing_retry", "pyzbar", "zxing_unwarp"], fallback_every=1).decode(bent)
    assert (out.texts, out.decoder) == ([URL], "zxing_unwarp")
    assert make_decoder("zxing_unwarp").decode(to_grey(desk())).texts == []


def test_fallbacks_run_only_every_nth_empty_frame() -> None:
    calls: list[str] = []
    chain = DecoderChain(["zxing", "pyzbar"], fallback_every=3)
    real = chain.decoders[1].decode
    chain.decoders[1].decode = lambda g: (calls.append("pyzbar"), real(g))[1]  # count the real decoder's runs
    grey = to_grey(desk())
    for _ in range(9):
        assert chain.decode(grey).texts == []
    assert len(calls) == 3


def test_same_code_reported_once_per_interval() -> None:
    now = [100.0]
    pipe = ScanPipeline(DecoderChain(["zxing"]), interval_s=3.0, clock=lambda: now[0])
    frame = receipt_frame(URL)
    first = pipe.process(frame)
    assert [e for e, _ in first] == ["scan"]
    assert first[0][1]["code"] == REC["code"] and first[0][1]["secret"] == REC["secret"]
    now[0] += 2.9
    assert pipe.process(frame) == []
    now[0] += 0.2
    assert [e for e, _ in pipe.process(frame)] == ["scan"]
    other = receipt_payloads(next(generate(2, seed=9)))["dsecret"]
    assert [d["kind"] for e, d in pipe.process(receipt_frame(other))] == ["dsecret"]


def test_repeat_filter_keeps_codes_apart() -> None:
    f = RepeatFilter(5.0, clock=lambda: 0.0)
    assert f.allow("A") and f.allow("B") and not f.allow("A")


DEFAULT_CHAIN = list(ScannerConfig().decoders)


@pytest.mark.parametrize("frame, chain, hint", [
    (lambda: receipt_frame(URL, scale=4, blur=2.4), ["zxing"], "hold_still"),  # blurred
    (lambda: receipt_frame(URL, scale=2, blur=1.0), ["zxing"], "move_closer"),  # small and blurred
    # sharp, but creased out of line: no decoder of the chain reads it, and holding still would not help
    (lambda: crumpled_receipt_frame(URL, amp=1.2, scale=4), DEFAULT_CHAIN, "flatten"),
], ids=["blurred", "small", "crumpled"])
def test_unreadable_code_in_view_gives_a_hint_then_clears(frame, chain: list[str], hint: str) -> None:
    pipe = ScanPipeline(DecoderChain(chain), interval_s=3.0)
    blurred = frame()
    seen = make_decoder("zxing").decode(to_grey(blurred))
    assert seen.unreadable and not seen.texts  # the situation the hint is for
    events = [ev for _ in range(3) for ev in pipe.process(blurred)]
    assert events == [("hint", {"hint": hint})]
    # the event holds a plain str: it is pickled to the supervisor, which must not need kiosk.scanner.pipeline
    assert type(events[0][1]["hint"]) is str
    assert b"kiosk.scanner" not in pickle.dumps(events)
    events = [ev for _ in range(8) for ev in pipe.process(desk())]
    assert events == [("hint", {"hint": None})]


def test_every_hint_has_its_line_on_the_scan_screen() -> None:
    template = (Path(__file__).parent.parent / "kiosk/templates/kiosk/scan.html").read_text(encoding="utf-8")
    for hint in Hint:
        assert f'data-hint="{hint.value}"' in template


def test_edge_steepness_tells_a_sharp_code_from_a_blurred_one() -> None:
    def edge(frame) -> float:
        out = make_decoder("zxing").decode(to_grey(frame))
        assert out.unreadable and not out.texts
        return out.edge

    crumpled = edge(crumpled_receipt_frame(URL, amp=1.2, scale=4))
    assert crumpled >= HintTracker.SHARP_EDGE
    for blur in (2.2, 2.4):  # out of focus: edges spread over ~5 pixels (more, and zxing sees no code)
        assert edge(receipt_frame(URL, scale=4, blur=blur)) < HintTracker.SHARP_EDGE
    assert edge_steepness(to_grey(desk()), [(0, 0), (5, 0), (5, 5), (0, 5)]) == 0.0  # too small to judge


def test_a_softer_camera_is_set_with_sharp_edge() -> None:
    # The crumpled receipt through a lens a little soft (sigma 0.8 px): the default calls it blurred.
    soft = cv2.GaussianBlur(crumpled_receipt_frame(URL, amp=1.2, scale=4), (0, 0), 0.8)
    assert ScannerConfig().sharp_edge == HintTracker.SHARP_EDGE
    for sharp_edge, hint in ((HintTracker.SHARP_EDGE, "hold_still"), (0.3, "flatten")):
        pipe = ScanPipeline(DecoderChain(DEFAULT_CHAIN), interval_s=3.0, sharp_edge=sharp_edge)
        assert [ev for _ in range(3) for ev in pipe.process(soft)] == [("hint", {"hint": hint})]


def test_one_blurred_frame_in_a_crumpled_run_keeps_the_flatten_hint() -> None:
    tracker = HintTracker()
    sharp = Outcome(unreadable=True, code_width=0.3, edge=0.5)
    blurred = Outcome(unreadable=True, code_width=0.3, edge=0.2)
    hints = [tracker.update(o, read=False) for o in (sharp, sharp, sharp, blurred, sharp)]
    assert hints == [None, None, "flatten", "flatten", "flatten"]
    hints = [tracker.update(blurred, read=False) for _ in range(3)]
    assert hints == ["flatten", "hold_still", "hold_still"]  # most of the last 5 unreadable frames are blurred


def test_a_read_clears_the_hint_at_once() -> None:
    pipe = ScanPipeline(DecoderChain(["zxing"]), interval_s=3.0)
    blurred = receipt_frame(URL, scale=4, blur=2.4)
    for _ in range(3):
        pipe.process(blurred)
    assert [e for e, _ in pipe.process(receipt_frame(URL))] == ["scan", "hint"]
    assert pipe.hints.hint is None


def test_foreign_code_is_rejected_not_reported() -> None:
    pipe = ScanPipeline(DecoderChain(["zxing"]), interval_s=3.0)
    assert pipe.process(receipt_frame("https://zalo.me/g/ubndxa")) == []


def test_kiosk_scan_image_prints_one_json_line_per_file(tmp_path: Path, config) -> None:
    from kiosk.cli import cli

    receipts = write_receipt_images(list(generate(3)), tmp_path / "receipts")
    foreign = tmp_path / "zalo.png"
    cv2.imwrite(str(foreign), receipt_frame("https://zalo.me/g/ubndxa"))
    empty = tmp_path / "empty.jpg"
    cv2.imwrite(str(empty), desk())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    files = [str(p) for p in receipts] + [str(foreign), str(empty), str(broken), str(tmp_path / "missing.png")]
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(f'[paths]\ndata_dir = "{config.paths.data_dir}"\n')
    result = CliRunner().invoke(cli, ["--config", str(cfg_file), "scan", "--image", *files])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["file"] for d in lines] == files
    recs = list(generate(3))
    for line, rec, form in zip(lines, recs, ("url", "dsecret", "bare"), strict=False):
        assert line["payload"] == receipt_payloads(rec)[form]
        assert line["dossier_code"] == rec["code"]
        assert line["secret"] == (None if form == "bare" else rec["secret"])
    assert lines[3]["payload"] == "https://zalo.me/g/ubndxa" and lines[3]["dossier_code"] is None
    assert lines[3]["rejected"]
    assert {k: lines[4][k] for k in ("payload", "dossier_code", "secret")} == dict.fromkeys(
        ("payload", "dossier_code", "secret"))
    assert lines[5]["error"] and lines[6]["error"] == "no such file"


def test_scan_command_needs_exactly_one_mode(config) -> None:
    from kiosk.cli import cli

    result = CliRunner().invoke(cli, ["scan"])
    assert result.exit_code == 2 and "exactly one" in result.output
    result = CliRunner().invoke(cli, ["scan", "--image"])
    assert result.exit_code == 2


def test_a_crashing_decoder_loses_only_that_file(tmp_path: Path, config) -> None:
    """zbar's abort() kills the decoding process; `--image` reports that file and goes on."""
    from kiosk.scanner import images

    good = tmp_path / "good.png"
    cv2.imwrite(str(good), receipt_frame(URL))
    bomb = tmp_path / "bomb.png"
    cv2.imwrite(str(bomb), desk())
    out = list(images.scan_files([str(good), str(bomb), str(good)], config.scanner, decode=abort_on_bomb))
    assert [o.get("dossier_code") for o in out] == [REC["code"], None, REC["code"]]
    assert out[1]["error"] == "the decoder crashed on this image"


def test_blind_fallbacks_stay_within_their_cpu_share() -> None:
    now = [0.0]
    chain = DecoderChain(["zxing", "pyzbar"], fallback_every=1, fallback_cpu=0.1, clock=lambda: now[0])
    real = chain.decoders[1].decode
    runs = []

    def slow_pyzbar(grey):  # the real decoder, costing 50 ms on the chain's clock
        runs.append(now[0])
        now[0] += 0.05
        return real(grey)

    chain.decoders[1].decode = slow_pyzbar
    grey = to_grey(desk())
    start = now[0]
    for _ in range(45):  # 3 s of 15 fps with nothing in view
        chain.decode(grey)
        now[0] += 1 / 15
    share = len(runs) * 0.05 / (now[0] - start)
    assert 4 <= len(runs) and share <= 0.12, (len(runs), share)
    # A code in view but unreadable gets the fallbacks at once, whatever the budget.
    runs.clear()
    chain.decode(to_grey(receipt_frame(URL, scale=4, blur=2.4)))
    assert len(runs) == 1
