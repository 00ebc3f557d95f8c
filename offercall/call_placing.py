"""What places a campaign's calls in one process: the voice runtime, the bot over HTTP, the
agents' line and, for SIP campaigns, the SIP stack. One :class:`CallPlacing` serves every
campaign the process dials; :meth:`CallPlacing.dialer` makes a campaign's :class:`Dialer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.engine import Engine

from bot.actions import texts
from core.settings import Settings
from handoff.service import HandoffService
from handoff.sla import SlaPolicy
from offercall.agent_line import HandoffLine
from offercall.sip_calls import SipCalls, customer_phone
from offercall.sms import sms_channel
from offercall.voice_calls import VoiceRuntime, new_call_id, run_call
from outbound import campaigns
from outbound.dialer import Dialer
from outbound.plan_runner import PlanRunner
from outbound.simulated_network import Personas, SimulatedNetwork
from voice.audio import MULAW_8K
from voice.transports.sip import SipConfig, SipStack, TrunkConfig


class CallPlacing:
    """An async context: on entry the voice is warmed and the handoff queue joined; on exit
    everything it started is stopped (a SIP stack it was given is left running)."""

    def __init__(self, settings: Settings, engine: Engine, *, personas: Personas | None = None,
                 dial_log: Path | None = None, sip_stack: SipStack | None = None,
                 sip_trunk: TrunkConfig | None = None, sweep: bool = True) -> None:
        self.settings, self.engine = settings, engine
        self.personas, self.dial_log = personas, dial_log
        self.sip_stack, self.sip_trunk = sip_stack, sip_trunk
        self._own_stack = False
        self._sweep = sweep
        self.runtime = VoiceRuntime(settings)
        self.service = HandoffService(engine, SlaPolicy.from_settings(settings))
        self.line = HandoffLine(self.service)
        self._http: aiohttp.ClientSession | None = None
        self._stack_lock = asyncio.Lock()
        self.plans: PlanRunner | None = None
        """Takes planned campaigns' steps (texts through Kannel when the SMS channel is on)."""

    async def __aenter__(self) -> CallPlacing:
        await self.runtime.warm(MULAW_8K)
        await self.service.start(sweep=self._sweep)
        self._http = aiohttp.ClientSession()
        sms = (sms_channel(self.settings, self.engine, self._http, bot=None)
               if self.settings.sms_gateway == "kannel" else None)
        self.plans = PlanRunner(self.engine, sms=sms, bank=self.settings.bank_name)
        return self

    async def __aexit__(self, *_: Any) -> None:
        if self._http is not None:
            await self._http.close()
        await self.service.stop()
        if self._own_stack and self.sip_stack is not None:
            await self.sip_stack.stop()
            self.sip_stack, self._own_stack = None, False

    async def _sip(self) -> SipStack:
        """The SIP stack, started on the first SIP campaign (``OFFERCALL_SIP_*``)."""
        async with self._stack_lock:
            if self.sip_stack is None:
                self.sip_stack, self._own_stack = SipStack(SipConfig.from_environ()), True
            await self.sip_stack.start()  # a stack given by the caller starts here too; then a no-op
        return self.sip_stack

    async def _call(self, campaign: campaigns.CampaignInfo, transport, job: campaigns.DialJob,
                    agent_line: HandoffLine | None):
        assert self._http is not None, "use CallPlacing as an async context"
        return await run_call(
            self.settings, self.runtime, self.engine, self._http, customer_id=job.customer_id,
            transport=transport, call_id=job.call_id, line=agent_line,
            config=self.runtime.session_config(detect_machine=campaign.config.detect_machine),
            start_metadata={texts.VARIANT_SLOT: job.variant},
        )

    async def dialer(self, campaign: campaigns.CampaignInfo, **options: Any) -> Dialer:
        """The dialer of ``campaign`` over its transport; ``options`` go to :class:`Dialer`."""
        lines_in_use: Callable[[], int] | None = None
        max_lines: int | None = None
        if campaign.transport == "sip":
            stack = await self._sip()
            calls = SipCalls(stack, self.runtime, self.engine, self.sip_trunk)

            async def place(job: campaigns.DialJob):
                number = await asyncio.to_thread(customer_phone, self.engine, job.customer_id)
                # What the bot will say to this customer is synthesised before the dial: on a
                # real line the customer's first words must not wait for the voice.
                await self.runtime.warm_for_customer(self.engine, job.customer_id, MULAW_8K, job.variant)
                return await self._call(campaign, calls.transport(number, job.call_id), job, None)

            lines_in_use, max_lines = stack.calls_in_flight, stack.max_calls
        else:
            if self.personas is None:
                raise campaigns.CampaignError("a simulated campaign needs personas for its customers")

            async def call(transport, job: campaigns.DialJob, agent_line=self.line):
                return await self._call(campaign, transport, job, agent_line)

            place = SimulatedNetwork(self.runtime.speaker, call, self.personas,
                                     speed=campaign.config.speed, dial_log=self.dial_log).place
        return Dialer(self.engine, campaign.id, place, new_call_id=new_call_id,
                      lines_in_use=lines_in_use, max_lines=max_lines, plans=self.plans, **options)
