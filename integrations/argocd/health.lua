-- Argo CD health of a vaultsync object (ExternalSecret, SecretStore,
-- ClusterSecretStore, ClusterExternalSecret), read from its Ready
-- condition. Until vaultsync has reported on the object's current spec
-- (status.observedGeneration behind metadata.generation) it is Progressing,
-- so a sync wave waits for the operator instead of trusting an old status.
local hs = {}
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for vaultsync to report on this object"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for vaultsync to act on the latest spec"
  return hs
end
for _, condition in ipairs(status.conditions) do
  if condition.type == "Ready" then
    hs.message = condition.message
    if condition.status == "True" then
      hs.status = "Healthy"
    elseif condition.status == "False" then
      hs.status = "Degraded"
    else
      hs.status = "Progressing"
    end
    return hs
  end
end
hs.status = "Progressing"
hs.message = "No Ready condition yet"
return hs
