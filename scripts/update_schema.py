"""Write provider/schema.json, the committed snapshot of the package schema (review its diff in pull requests)."""

from pathlib import Path

from gloo_mesh_registration.package import render_schema

SNAPSHOT = Path(__file__).resolve().parents[1] / "provider" / "schema.json"

if __name__ == "__main__":
    SNAPSHOT.write_text(render_schema())
    print(f"wrote {SNAPSHOT}")
