"""A small async client for the Rasa server: the only way other packages talk to the bot.

A turn goes in as text; what comes back is the bot's texts plus its directives
(``transfer``, ``hangup``, ``dtmf_request``), which channels act on without ever
guessing from the text.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError)
"""What a request to a server that is down, hung or too slow raises. On Python 3.10 aiohttp's
timeouts raise ``asyncio.TimeoutError``, which is not the built-in ``TimeoutError``."""

START_MESSAGE = "/session_start"
DIRECTIVES = frozenset({"transfer", "hangup", "dtmf_request"})


class RasaUnavailable(RuntimeError):
    """The Rasa server could not be reached or failed on a turn."""


class ActionFailed(RasaUnavailable):
    """Rasa ran the turn, but custom actions failed on it (the action server is down or broken):
    whatever they were to write and say is lost unless the caller keeps it."""

    def __init__(self, message: str, actions: list[str], partial: BotTurn) -> None:
        super().__init__(message)
        self.actions = actions
        """The custom actions that failed, in order."""
        self.partial = partial
        """What the bot said on the turn despite the failure (often nothing)."""


@dataclass(frozen=True)
class Directive:
    """An instruction for the channel, e.g. ``transfer`` with ``{"handoff_id": 7}``."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BotTurn:
    """Everything the bot said and asked the channel to do in one turn."""

    texts: list[str]
    directives: list[Directive]
    prompts: list[str | None] = field(default_factory=list)
    """A tag per text naming the scripted prompt it is (``opening``, ``disclosure``, ``offer``),
    or None; empty when nothing was tagged."""

    def prompt_of(self, index: int) -> str | None:
        """The tag of ``texts[index]``, if any."""
        return self.prompts[index] if index < len(self.prompts) else None

    @property
    def ends_conversation(self) -> bool:
        """True when the channel should stop after this turn (transfer or hang-up)."""
        return any(d.name in {"transfer", "hangup"} for d in self.directives)


def parse_bot_messages(messages: list[dict[str, Any]]) -> BotTurn:
    """Split the Rasa channel's message list into texts and directives."""
    texts: list[str] = []
    prompts: list[str | None] = []
    directives: list[Directive] = []
    for message in messages:
        if message.get("text"):
            texts.append(message["text"])
            prompts.append(None)
        custom = message.get("custom")
        if not isinstance(custom, dict):
            continue
        if custom.get("directive") in DIRECTIVES:
            data = {k: v for k, v in custom.items() if k != "directive"}
            directives.append(Directive(custom["directive"], data))
        elif isinstance(custom.get("prompt"), str) and texts:
            # Rasa sends a response's custom part as its own message right after the text.
            prompts[-1] = custom["prompt"]
    return BotTurn(texts=texts, directives=directives, prompts=prompts)


def _action_failure(body: Any) -> RasaUnavailable:
    """The channel's answer to a turn whose custom actions failed (see ``bot.channel``)."""
    if not isinstance(body, dict) or body.get("error") != "action_failed":
        return RasaUnavailable(f"Rasa answered HTTP 502: {str(body)[:200]}")
    actions = [str(name) for name in body.get("failed_actions") or []]
    messages = body.get("messages")
    partial = parse_bot_messages(messages if isinstance(messages, list) else [])
    return ActionFailed(f"custom actions failed: {', '.join(actions)}", actions, partial)


class BotPort(Protocol):
    """The bot as a channel talks to it: :class:`RasaClient`, or ``bot.failsafe.FailSafeBot``
    around one, or a scripted bot in tests."""

    async def start(
        self, conversation_id: str, customer_id: str, channel: str,
        extra: dict[str, Any] | None = None,
    ) -> BotTurn: ...

    async def send(
        self, conversation_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> BotTurn: ...

    async def parse(self, text: str) -> tuple[str | None, float | None]: ...


class RasaClient:
    """Sends customer turns to the Rasa server's offercall channel."""

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        api_token: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/webhooks/offercall/webhook"
        self._status_url = base_url.rstrip("/") + "/status"
        self._parse_url = base_url.rstrip("/") + "/model/parse"
        self._status_params = {"token": api_token} if api_token else {}
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def start(
        self, conversation_id: str, customer_id: str, channel: str,
        extra: dict[str, Any] | None = None,
    ) -> BotTurn:
        """Open an outbound conversation: the bot answers with its opening. ``extra`` metadata
        reaches the session start action (e.g. ``{"script_variant": "B"}``)."""
        metadata = {**(extra or {}), "customer_id": customer_id, "channel": channel}
        return await self.send(conversation_id, START_MESSAGE, metadata)

    async def send(
        self, conversation_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> BotTurn:
        """One customer turn in, the bot's turn out."""
        payload = {"sender": conversation_id, "message": text, "metadata": metadata or {}}
        try:
            async with self._session.post(self._url, json=payload, timeout=self._timeout) as resp:
                if resp.status == 502:
                    try:
                        body = await resp.json(content_type=None)
                    except ValueError:  # e.g. a proxy's error page
                        body = None
                    raise _action_failure(body)
                if resp.status != 200:
                    detail = await resp.text()
                    raise RasaUnavailable(f"Rasa answered HTTP {resp.status}: {detail[:200]}")
                return parse_bot_messages(await resp.json())
        except UNREACHABLE as exc:
            raise RasaUnavailable(f"no answer from the Rasa server at {self._url}: {exc!r}") from exc

    async def parse(self, text: str) -> tuple[str | None, float | None]:
        """The NLU's intent and confidence for ``text``, without changing any conversation."""
        try:
            async with self._session.post(
                self._parse_url, json={"text": text}, params=self._status_params,
                timeout=self._timeout,
            ) as resp:
                if resp.status != 200:
                    detail = await resp.text()
                    raise RasaUnavailable(f"Rasa parse answered HTTP {resp.status}: {detail[:200]}")
                intent = (await resp.json()).get("intent") or {}
        except UNREACHABLE as exc:
            raise RasaUnavailable(f"no answer from the Rasa server at {self._parse_url}: {exc!r}") from exc
        confidence = intent.get("confidence")
        return intent.get("name"), None if confidence is None else float(confidence)

    async def is_ready(self) -> bool:
        """True when the server is up with a model loaded."""
        try:
            async with self._session.get(
                self._status_url, params=self._status_params, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    return False
                status = await resp.json()
                return bool(status.get("model_file"))
        except UNREACHABLE:
            return False
