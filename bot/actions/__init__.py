"""The rasa-sdk action server's actions (``rasa run actions --actions bot.actions``)."""
