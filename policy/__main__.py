from gloo_mesh_policies import serve  # type: ignore[import-not-found]  # the engine runs the pack from policy/

serve()
