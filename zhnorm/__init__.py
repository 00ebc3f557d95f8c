"""Mandarin normalisation shared by the bot and the voice layer.

Pure functions, no I/O: read amounts and callback times out of what customers say,
and write numbers, amounts, rates and times the way a Mandarin speaker says them.
"""

from zhnorm.amounts import parse_amount, say_amount
from zhnorm.numerals import parse_numeral, say_decimal, say_integer
from zhnorm.speech import say_rate, speakable
from zhnorm.times import parse_callback_time, say_time

__all__ = [
    "parse_amount",
    "parse_callback_time",
    "parse_numeral",
    "say_amount",
    "say_decimal",
    "say_integer",
    "say_rate",
    "say_time",
    "speakable",
]
