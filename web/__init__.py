"""The demo sign-in page (web/site/) and the loopback server that serves it (web/devserver.py)."""
