"""Graph nodes: one small async function per step of the investigation."""
