"""The customer's in-app chat: the widget page and its websocket (with agent takeover and replay
after a dropped connection), a plain HTTP chat API, and the signed links the app opens.

It talks to the bot through whatever the app factory gives it (:class:`chat.config.ChatConfig`)
and to the agents through the handoff queue. It never imports ``offercall`` or ``voice``."""
