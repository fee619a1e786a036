import struct
import zlib
from datetime import date, timedelta

from bot.messages.charts import HEIGHT_PX, WIDTH_PX, spend_chart

DAYS = [date(2026, 11, 12) + timedelta(days=d) for d in range(14)]


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    # The chunk's CRC must match: a truncated or corrupt file would not.
    assert struct.unpack(">I", png[29:33])[0] == zlib.crc32(png[12:29])
    return width, height


def test_a_stacked_chart_is_a_png_of_the_expected_size() -> None:
    png = spend_chart(
        DAYS,
        {"Kling Video": [float(d) for d in range(14)], "Other": [3.0] * 14},
        title="last 14 days",
        limit=12,
    )
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX)
    assert png.endswith(b"IEND\xaeB`\x82")


def test_an_empty_fortnight_still_renders() -> None:
    assert png_size(spend_chart(DAYS, {}, title="nothing spent")) == (WIDTH_PX, HEIGHT_PX)


def test_more_data_draws_more() -> None:
    quiet = spend_chart(DAYS, {"A": [0.0] * 14}, title="t")
    busy = spend_chart(DAYS, {"A": [5.0] * 14, "B": [7.0] * 14}, title="t")
    assert quiet != busy


def test_model_names_are_shown_literally_whatever_they_contain() -> None:
    """A model called `$\\frac$` used to raise in matplotlib's maths parser (no digest at
    all), and one starting with `_` was left out of the legend."""
    import matplotlib.pyplot as plt

    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(3)]
    stacks = {"$\\frac$": [1.0, 2.0, 3.0], "_private": [2.0, 1.0, 0.0], "a $5 $ model": [1, 1, 1]}
    before = set(plt.get_fignums())
    png = spend_chart(days, stacks, title="t", limit=None)
    assert png.startswith(b"\x89PNG")
    assert set(plt.get_fignums()) == before  # the figure is closed
