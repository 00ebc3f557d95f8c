"""A campaign end to end with the real bot (Rasa server and action server), real Vosk and the
neural voice: simulated customers with mixed behaviours, simulated agents taking the
transfers, then the funnel checked against the individual calls. (A dialer killed with calls
in flight and started again: tests/test_scheduler.py, on SQLite and PostgreSQL.)"""

from __future__ import annotations

import json
import os
from datetime import timedelta

from sqlalchemy import select

from bot.actions import texts
from core.clock import utcnow
from core.masking import mask_name
from core.settings import PROJECT_ROOT
from handoff.agents import load_agents_csv
from offercall.campaign_runner import create, run_campaign, write_campaign_report
from outbound.campaigns import CampaignConfig
from outbound.funnel import funnel
from outbound.report_data import attempt_facts
from outbound.simulated_network import load_personas
from outbound.whitelist import import_whitelist_file
from persistence import store
from persistence.branches import load_branches
from persistence.engine import session_scope
from persistence.schema import CallAttempt, CampaignTarget, Conversation, Handoff

HEADER = ("customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,term_months,"
          "valid_until,consent,gender\n")
AGENTS = ("jt_zhang", "sl_wang", "pd_li", "dy_chen", "cd_zhou")
PERSONAS = """
{p}01: {{script: ["是我", "好的，帮我转人工"]}}
{p}02: {{script: ["是我", "不用了，谢谢"]}}
{p}03: {{answer: voicemail}}
{p}04: [{{answer: no_answer}}, {{script: ["是我", "我要申请"]}}]
{p}05: {{script: ["是我", "以后别再给我打电话了"]}}
{p}06: {{script: ["不是，你打错了"]}}
{p}07: {{answer: busy}}
"""
FAST = {"window_start": "00:00", "window_end": "23:59:59", "min_gap_s": 0,
        "max_attempts_per_week": 50, "retry_backoff_s": [1], "max_attempts": 2,
        "max_concurrency": 3, "speed": 3.0, "lease_s": 6}


def setup_campaign(bot_stack, tmp_path, prefix: str, campaign_id: str,
                   personas: str = PERSONAS) -> list[str]:
    """Loads customers ``<prefix>01..07``, branches and agents; creates the campaign."""
    ids = [f"{prefix}{i:02d}" for i in range(1, 8)]
    block = f"13{ord(prefix[0]):03d}"  # each prefix its own numbers: the stack's DNC list is shared
    rows = "".join(f"{c},客户{c},{block}{i:06d},金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1,M\n"
                   for i, c in enumerate(ids, 1))
    (tmp_path / "list.csv").write_text(HEADER + rows, encoding="utf-8")
    assert not import_whitelist_file(bot_stack.engine, tmp_path / "list.csv").errors
    with session_scope(bot_stack.engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        load_agents_csv(session, PROJECT_ROOT / "data" / "agents_sample.csv", utcnow())
    create(bot_stack.engine, campaign_id, "e2e", "simulated", CampaignConfig.from_json(FAST), ids)
    (tmp_path / "personas.yml").write_text(personas.format(p=prefix), encoding="utf-8")
    return ids


def attempts_of(engine, campaign_id: str) -> list[CallAttempt]:
    with session_scope(engine) as session:
        rows = session.execute(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
                               .order_by(CallAttempt.customer_id, CallAttempt.attempt_no)).scalars().all()
        session.expunge_all()
        return rows


def what_was_said(engine, attempts: list[CallAttempt]) -> str:
    """The transcripts of ``attempts``' calls, line by line, to explain an unexpected outcome."""
    lines = []
    with session_scope(engine) as session:
        for attempt in attempts:
            call = store.get_call(session, attempt.call_id)
            lines.append(f"{attempt.customer_id} ({attempt.outcome}):")
            if call is None or not call.transcript_path or not os.path.exists(call.transcript_path):
                lines.append("  no transcript")
                continue
            with open(call.transcript_path, encoding="utf-8") as handle:
                for entry in json.load(handle)["transcript"]:
                    lines.append(f"  {json.dumps(entry, ensure_ascii=False)[:300]}")
    return "\n".join(lines)


async def test_a_demo_campaign_runs_end_to_end_and_its_funnel_matches_the_calls(bot_stack, tmp_path):
    ids = setup_campaign(bot_stack, tmp_path, "E", "e2e")
    run = await run_campaign(
        bot_stack.settings, "e2e", personas=load_personas(tmp_path / "personas.yml"),
        simulated_agents=AGENTS, out=None, idle_horizon=timedelta(minutes=1),
    )
    engine = bot_stack.engine
    attempts = attempts_of(engine, "e2e")
    by_customer = {a.customer_id: [x for x in attempts if x.customer_id == a.customer_id] for a in attempts}
    assert set(by_customer) == set(ids)
    assert [a.outcome for a in by_customer["E04"]] == ["no_answer", "transferred"], what_was_said(
        engine, by_customer["E04"])
    assert [a.outcome for a in by_customer["E07"]] == ["busy", "busy"]  # attempts used up
    outcome = {c: rows[-1].outcome for c, rows in by_customer.items()}
    expected = {"E01": "transferred", "E02": "not_interested", "E03": "voicemail",
                "E04": "transferred", "E05": "opt_out", "E06": "wrong_person", "E07": "busy"}
    assert outcome == expected, what_was_said(engine, [by_customer[c][-1] for c in expected
                                                       if outcome[c] != expected[c]])
    assert [a.outcome for a in by_customer["E03"]] == ["voicemail", "voicemail"]  # retried
    assert run.progress.outcomes["voicemail"] == 2

    with session_scope(engine) as session:
        # the voicemail got no conversation with the bot at all, so no offer detail was left
        voicemail = by_customer["E03"][0]
        assert session.get(Conversation, voicemail.call_id) is None
        assert store.is_do_not_contact(session, customer_id="E05")
        targets = {t.customer_id: t for t in session.execute(
            select(CampaignTarget).where(CampaignTarget.campaign_id == "e2e")).scalars()}
        tickets = {h.conversation_id: h for h in session.execute(select(Handoff)).scalars()}
        facts = attempt_facts(session, "e2e")
        calls = {a.call_id: store.get_call(session, a.call_id) for a in attempts}
    assert {t.status for t in targets.values()} == {"done"}

    # every transferred call reached an agent who closed it with an outcome
    for call_id in (by_customer["E01"][0].call_id, by_customer["E04"][1].call_id):
        assert tickets[call_id].connected_at is not None
        assert tickets[call_id].agent_outcome in ("applied", "follow_up")
        assert tickets[call_id].customer_id == calls[call_id].customer_id
        assert calls[call_id].outcome == "transferred" and calls[call_id].handoff_id == tickets[call_id].id

    # disclosure proof: played in full before the offer, in the recording that is on disk
    for attempt in (by_customer["E01"][0], by_customer["E02"][0]):
        proof = attempt.disclosure_proof
        assert proof["disclosure_before_offer"] and proof["disclosure"]["completed"]
        assert proof["disclosure"]["end_ms"] <= proof["offer"]["start_ms"]
        assert os.path.exists(proof["recording"])
        assert attempt.offer_terms["amount_yuan"] == 50000 and attempt.offer_version == 1
    assert by_customer["E06"][0].disclosure_proof is None  # the wrong person heard no disclosure

    # the script variant recorded for the customer is the one they heard
    for attempt in (by_customer["E01"][0], by_customer["E02"][0]):
        transcript = json.loads(open(calls[attempt.call_id].transcript_path, encoding="utf-8").read())
        opening = next(e["text"] for e in transcript["transcript"] if e.get("prompt") == "opening")
        voice = texts.Voice(bank=bot_stack.settings.bank_name, hotline=bot_stack.settings.bank_hotline)
        whom = texts.addressee(mask_name(f"客户{attempt.customer_id}"), "M")
        assert opening == texts.opening(voice, whom, targets[attempt.customer_id].variant)

    # the funnel counts equal the outcomes of the individual calls
    counts = funnel(facts)["all"]
    stages = counts.stages
    assert stages["dialed"] == 7
    assert stages["answered"] == len({a.customer_id for a in attempts
                                      if calls[a.call_id].outcome not in ("no_answer", "busy", "voicemail")})
    assert stages["transferred"] == len({a.customer_id for a in attempts if a.outcome == "transferred"}) == 2
    assert stages["right_person"] == 4  # E01, E02, E04, E05 confirmed who they are
    assert stages["agent_connected"] == 2
    assert stages["applied"] == sum(1 for a in attempts if a.handoff_id
                                    and tickets[a.call_id].agent_outcome == "applied")
    assert counts.attempts == len(attempts) == 10
    assert counts.drop_offs["voicemail"] == 1 and counts.drop_offs["opt_out"] == 1
    assert counts.drop_offs["wrong_person"] == 1 and counts.drop_offs["not_interested"] == 1

    paths = write_campaign_report(engine, "e2e", tmp_path / "report")
    html = paths["html"].read_text(encoding="utf-8")
    assert "e2e" in html and "<svg" in html
