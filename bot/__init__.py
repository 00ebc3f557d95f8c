"""The Rasa assistant: its project files, its custom actions and a client for its server."""
