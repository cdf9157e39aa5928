"""Step Functions that run: moto's state machine execution, switched on through its config API.

By default moto records executions without running them. With the config
``{"stepfunctions": {"execute_state_machine": true}}`` (moto 5.2.5:
``moto/moto_api/_internal/models.py`` ``set_config``; ``moto/stepfunctions/responses.py``
then serves the ASL interpreter's backend, ``stepfunctions_parser_backends``) it
interprets the ASL. Its service integrations reach the embedded AWS that took the request
(``lake/local/moto_sfn.py``), so its DynamoDB tasks see the same tables as everything else.

Only state machines created after the switch are executed (the two backends keep
separate state machines), so :class:`lake.local.apps.LocalApp` switches it on before
creating any. The config is process-wide (moto's backends are), like the embedded AWS.
"""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any

from lake.local.embedded import ADMIN_TOKEN_HEADER

if TYPE_CHECKING:
    from lake.local.up import EmbeddedLake

CONFIG = {"stepfunctions": {"execute_state_machine": True}}


def enable_execution(lake: EmbeddedLake) -> dict[str, Any]:
    """Switch on state machine execution on the lake's embedded AWS; return moto's config."""
    aws = lake.aws
    req = urllib.request.Request(aws.endpoint_url + "/moto-api/config", method="POST",
                                 data=json.dumps(CONFIG).encode(),
                                 headers={ADMIN_TOKEN_HEADER: aws.admin_token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        config: dict[str, Any] = json.loads(resp.read() or b"{}")
    return config

