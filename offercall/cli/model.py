"""``offercall train`` and ``nlu-report``: the Rasa model and how well its NLU does."""

from __future__ import annotations

import argparse
import sys

from core.settings import Settings


def cmd_train(settings: Settings, _: argparse.Namespace) -> int:
    from offercall.training import TrainingError, train

    try:
        print(f"model: {train(settings)}")
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_nlu_report(settings: Settings, _: argparse.Namespace) -> int:
    from offercall.nlu_eval import REPORT_PATH, EvaluationError, evaluate, render_markdown
    from offercall.processes import ServiceError, Supervisor
    from offercall.short_answer_eval import ShortAnswerError, evaluate_short_answers
    from offercall.short_answer_eval import render_markdown as render_short_answers
    from offercall.training import train

    train(settings)
    supervisor = Supervisor(settings)
    try:
        supervisor.ensure(["rasa"])
        summary = evaluate(settings.rasa_url, settings.rasa_token)
        short_answers = evaluate_short_answers(settings.rasa_url, settings.rasa_token)
    except (EvaluationError, ShortAnswerError, ServiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    REPORT_PATH.write_text(render_markdown(summary, "offercall nlu-report")
                           + "\n".join(render_short_answers(short_answers)) + "\n")
    print(REPORT_PATH.read_text())
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers the model commands."""
    sub.add_parser("train", help="train the Rasa model (skipped when unchanged)").set_defaults(func=cmd_train)
    sub.add_parser("nlu-report", help="evaluate the NLU on the held-out split into docs/nlu_report.md"
                   ).set_defaults(func=cmd_nlu_report)
