"""Typed keys for the web app's shared state."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy.engine import Engine

from bot.failsafe import FailSafeBot
from offercall.settings import Settings
from offercall.voice_calls import VoiceRuntime

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
RASA = web.AppKey("rasa", FailSafeBot)
HTTP = web.AppKey("http", aiohttp.ClientSession)
VOICE = web.AppKey("voice", VoiceRuntime)
