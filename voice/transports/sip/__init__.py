"""Real telephony: outbound SIP calls with RTP audio (PJSIP through pjsua2)."""

from voice.transports.sip.config import SipConfig, SipConfigError, TrunkConfig
from voice.transports.sip.stack import SipStack
from voice.transports.sip.transport import SipTransport, TransferRecord

__all__ = ["SipConfig", "SipConfigError", "SipStack", "SipTransport", "TransferRecord", "TrunkConfig"]
