"""Render, lint and validate the chart with the real Helm engine (helm-python-sdk).

Usage: helm.py render|lint|validate CHART_DIR NAMESPACE < values.json
Prints JSON: render -> {template: manifest}, lint -> the lint report, validate -> {"error": str|null}.
"""
import json
import sys

import helm_python


def main() -> None:
    command, chart_dir, namespace = sys.argv[1], sys.argv[2], sys.argv[3]
    values = json.load(sys.stdin)
    if command == "render":
        chart = helm_python.Chart.load(chart_dir)
        print(json.dumps(chart.render(values, name="telemetry-manager", namespace=namespace, is_install=True)))
    elif command == "lint":
        print(json.dumps(helm_python.lint(chart_dir, values, strict=True, namespace=namespace)))
    elif command == "validate":
        chart = helm_python.Chart.load(chart_dir)
        try:
            chart.validate_schema(chart.merge_values(values) if hasattr(chart, "merge_values") else values)
            print(json.dumps({"error": None}))
        except helm_python.HelmError as error:
            print(json.dumps({"error": str(error)}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
