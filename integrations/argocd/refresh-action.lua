-- Argo CD resource action "refresh": asks vaultsync to read Vault again
-- now, by setting the force-sync annotation to the current time.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["vaultsync.dev/force-sync"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
