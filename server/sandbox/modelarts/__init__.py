"""The sandbox's ModelArts face: Huawei Cloud ModelArts training jobs v2, dedicated pools, IAM project/domain
lookups and BSS price inquiries on one loopback port, SDK-HMAC-SHA256 verified, jobs run by the shared
sandbox's local executor with the same fault switches as the PAI face.

    from cloudjobs_mcp.server.sandbox.modelarts import serve_modelarts

    async with serve_modelarts(SandboxSettings(state_dir=tmp, region="cn-north-4")) as running:
        running.url, running.project_id, running.access_key      # what a client needs
        running.env()                                            # CLOUDJOBS_* / HUAWEICLOUD_SDK_* for the server

Modules: ``catalog`` (flavors, engines, pools, prices), ``auth`` (the gateway's signature checks), ``shapes``
(the shared timeline in ModelArts' shapes), ``app`` (routing, handlers), ``runner`` (serve, CLI banner).
"""
