# An empty stand-in for the "base" www plugin (the buildbot-www web UI), for tests only.
#
# Debian 12 packages the Buildbot master without buildbot-www, and Buildbot 3.7's web
# service refuses to start without a "base" plugin even though the REST API (/api/v2) does
# not need it. This plugin gives the web service an empty root for it to hang /api, /auth,
# /sse and the others on; "/" itself has no UI to show.
import os

from twisted.web import resource


class _EmptyUi:
    description = "storeplane test stand-in for buildbot-www (no UI)"
    version = "0"
    ui = False

    def __init__(self):
        self.static_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
        self.resource = resource.Resource()
        self.master = None
        self.config = None

    def setMaster(self, master):
        self.master = master

    def setConfiguration(self, config):
        self.config = config


ep = _EmptyUi()
