"""The one declaration of the wiring: lake up's mappings and the template both come from it."""

from __future__ import annotations

from lake.deploy.template import EXAMPLE, render
from lake.local.up import LAKE_WIRING
from lake.wiring import FUNCTIONS, GLUE_JOBS, WIRING


def test_lake_up_wires_exactly_the_declared_functions() -> None:
    assert [(w.source, w.function, w.batch_size, w.name) for w in LAKE_WIRING] == [
        ("dynamodb", "lambdas.stream_archiver:lambda_handler", 100, "stream-archiver"),
        ("dynamodb", "lambdas.fanout:lambda_handler", 100, "fanout"),
        ("kinesis", "lambdas.parquet_consumer:lambda_handler", 2000, "parquet-consumer"),
    ]
    assert [w.name for w in LAKE_WIRING] == [f.name for f in FUNCTIONS]


def test_every_declared_trigger_is_a_mapping_in_the_template_with_its_settings() -> None:
    resources = render(EXAMPLE)["Resources"]
    mappings = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::Lambda::EventSourceMapping"}
    for f in WIRING.functions:
        mine = {k: p for k, p in mappings.items() if p["FunctionName"] == {"Ref": f.logical_id}}
        # one mapping per source table's stream, or one on the lake's Kinesis stream
        assert len(mine) == (len(EXAMPLE.tables) if f.trigger.source == "dynamodb" else 1)
        for props in mine.values():
            t = f.trigger
            assert props["BatchSize"] == t.batch_size
            assert props["MaximumBatchingWindowInSeconds"] == t.batching_window_s
            assert props["MaximumRetryAttempts"] == t.maximum_retry_attempts
            assert props["MaximumRecordAgeInSeconds"] == t.maximum_record_age_s
            assert props["BisectBatchOnFunctionError"] is t.bisect_batch_on_function_error
            assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            dlq = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
            assert props["DestinationConfig"] == {"OnFailure": {"Destination": dlq}}
        assert resources[f.logical_id]["Properties"]["Handler"] == f.lambda_handler


def test_glue_jobs_are_declared_by_name_with_their_scripts_and_schedules() -> None:
    assert [(j.name, j.script) for j in GLUE_JOBS] == [
        ("compact", "glue_jobs/compact.py"), ("current_state", "glue_jobs/current_state.py"),
        ("backfill", "glue_jobs/backfill.py"), ("bootstrap", "glue_jobs/bootstrap.py")]
    scheduled = {j.name for j in GLUE_JOBS if j.schedule}
    assert scheduled == {"compact", "current_state"}
    resources = render(EXAMPLE)["Resources"]
    triggers = {v["Properties"]["Actions"][0]["JobName"]["Ref"]: v["Properties"]["Schedule"]
                for v in resources.values() if v["Type"] == "AWS::Glue::Trigger"}
    assert triggers == {j.logical_id: j.schedule for j in GLUE_JOBS if j.schedule}


def test_a_declared_filter_becomes_the_mappings_filter_criteria() -> None:
    import dataclasses

    from lake.deploy.validate import lint

    pattern = '{"eventName": ["INSERT", "MODIFY"]}'
    archiver = WIRING.function("stream-archiver")
    filtered = dataclasses.replace(archiver, trigger=dataclasses.replace(archiver.trigger, filter_patterns=(pattern,)))
    wiring = dataclasses.replace(WIRING, functions=(filtered, *WIRING.functions[1:]))
    template = render(EXAMPLE, wiring)
    props = template["Resources"]["StreamArchiverOrdersMapping"]["Properties"]
    assert props["FilterCriteria"] == {"Filters": [{"Pattern": pattern}]}
    assert "FilterCriteria" not in template["Resources"]["FanoutOrdersMapping"]["Properties"]
    assert lint(template) == []
