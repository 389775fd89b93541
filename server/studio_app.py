"""The app langgraph.json mounts (`"http": {"app": "./server/studio_app.py:app"}`).

The LangGraph server executes this file by path, under a private module name that is not
in `sys.modules`: everything lives in server/studio.py, imported normally.
"""

from server.studio import create_studio_app

app = create_studio_app()
