"""Typed keys for the web app's shared state."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.engine import Engine

from bot.client import RasaClient
from offercall.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
RASA = web.AppKey("rasa", RasaClient)
