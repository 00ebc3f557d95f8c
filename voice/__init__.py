"""The voice layer: telephone audio in and out, Vosk speech recognition, Mandarin TTS,
and the call session that turns a phone call into turns of the one Rasa conversation.

It talks to the bot only through :mod:`bot.client` and never imports ``offercall``.
"""
