"""Typed keys for the web app's shared state."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy.engine import Engine

from core.settings import Settings
from offercall.voice_calls import VoiceRuntime

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
HTTP = web.AppKey("http", aiohttp.ClientSession)
VOICE = web.AppKey("voice", VoiceRuntime)
