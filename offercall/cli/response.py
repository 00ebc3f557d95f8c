"""``offercall response …``: response prediction. Make a SYNTHETIC demo history, train and
cross-validate the model on the contact history, and target a draft campaign with it."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from core.settings import Settings


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _progress(quiet: bool):
    def show(done: int, total: int) -> None:
        if not quiet:
            print(f"\r{done}/{total}", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)
    return show


def cmd_synth(settings: Settings, args: argparse.Namespace) -> int:
    """Writes a made-up contact history (customers SYN-…) into the database, for the demo."""
    from outbound import contact_history, synthetic_history
    from persistence.engine import open_database, session_scope

    now = datetime.now(timezone.utc)
    history = synthetic_history.generate(args.customers, seed=args.seed, end=now)
    print(f"SYNTHETIC history (made up, not real customers): {len(history.profiles)} "
          f"customers, {len(history.contacts)} contacts over 180 days, seed {args.seed}")
    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            contact_history.store_synthetic(session, history, now, _progress(args.quiet))
    finally:
        engine.dispose()
    print(f"written as campaign {contact_history.SYNTHETIC_CAMPAIGN!r} "
          f"({contact_history.SYNTHETIC_NAME})")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    """Trains on every contact in the database; prints the cross-validated AUC."""
    from outbound import contact_history
    from outbound.response_features import training_rows
    from outbound.response_model import ModelError, train
    from persistence.engine import open_database, session_scope

    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            contacts = contact_history.contacts(session)
            profiles = contact_history.profiles(session)
    finally:
        engine.dispose()
    synthetic = sum(c.customer_id.startswith("SYN-") for c in contacts)
    source = ("synthetic history (demo)" if synthetic == len(contacts) else
              f"contact history ({synthetic} of {len(contacts)} contacts synthetic)")
    rows, labels, groups = training_rows(profiles, contacts)
    try:
        model = train(rows, labels, groups, source=source, seed=args.seed,
                      progress=lambda text: print(text, file=sys.stderr))
    except ModelError as exc:
        return _fail(f"{exc}; `offercall response synth` makes a synthetic history for a demo")
    path = model.save(args.out or settings.response_model_path)
    assert model.evaluation is not None
    print(f"trained on {source}: {model.evaluation.describe()}")
    print(f"model: {path}")
    return 0


def cmd_target(settings: Settings, args: argparse.Namespace) -> int:
    """Puts a draft campaign's customers in arms; the model chooses for its share."""
    from outbound.campaigns import CampaignError
    from outbound.response_model import ModelError, ResponseModel
    from outbound.targeting import target_campaign
    from persistence.audit import Actor
    from persistence.engine import open_database

    try:
        model = ResponseModel.load(args.model or settings.response_model_path)
    except ModelError as exc:
        return _fail(str(exc))
    engine = open_database(settings)
    try:
        summary = target_campaign(engine, args.campaign, model, model_share=args.share,
                                  actor=Actor.command_line(), now=datetime.now(timezone.utc),
                                  progress=_progress(args.quiet))
    except (CampaignError, ValueError) as exc:
        return _fail(str(exc))
    finally:
        engine.dispose()
    data = summary.to_json()
    print(f"customers: {data['customers']}  arms: {data['arms']}")
    print(f"model's choices: channels {data['channels']}  hours {data['hours']}  "
          f"variants {data['variants']}")
    if summary.mean_score is not None:
        print(f"mean predicted response of the model's choices: {summary.mean_score:.1%}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers ``response synth|train|target``."""
    response = sub.add_parser("response", help="response prediction: synthetic demo history, "
                                               "training, targeting a campaign")
    verbs = response.add_subparsers(dest="verb", required=True)
    synth = verbs.add_parser("synth", help="write a SYNTHETIC contact history for the demo")
    synth.add_argument("--customers", type=int, default=5000)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--quiet", action="store_true")
    synth.set_defaults(func=cmd_synth)
    train = verbs.add_parser("train", help="train on the contact history; print its AUC")
    train.add_argument("--out", help="where to save it (default var/response_model.joblib)")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)
    target = verbs.add_parser("target", help="choose channel, hour and variant for a draft "
                                             "campaign's model arm")
    target.add_argument("campaign")
    target.add_argument("--share", type=float, default=0.5,
                        help="the share of customers the model chooses for (default 0.5)")
    target.add_argument("--model", help="default var/response_model.joblib")
    target.add_argument("--quiet", action="store_true")
    target.set_defaults(func=cmd_target)
