//! The rules of ExternalSecret and ClusterExternalSecret specs.

use super::*;

// ExternalSecret

/// The rules of an ExternalSecret's spec.
pub fn external_secret(spec: &ExternalSecretSpec) -> Result<(), Refusal> {
    external_secret_at("spec", spec)
}

fn external_secret_at(at: &str, spec: &ExternalSecretSpec) -> Checked {
    let own_sources =
        spec.data.iter().all(|d| d.source_ref.is_some()) && spec.data_from.iter().all(|f| f.source_ref.is_some());
    require(spec.secret_store_ref.is_some() || own_sources, at, STORE_REF_MESSAGE)?;
    // CEL's has() counts an empty `data: {}` or `templateFrom: []` as set;
    // the types cannot tell empty from absent, so here they count as unset.
    let templated = spec.target.template.as_ref().is_some_and(|t| !t.data.is_empty() || !t.template_from.is_empty());
    require(spec.data.len() + spec.data_from.len() > 0 || templated, at, SOME_DATA_MESSAGE)?;

    if let Some(store) = &spec.secret_store_ref {
        length(&format!("{at}.secretStoreRef.name"), &store.name, 1, 253)?;
    }
    pattern(&format!("{at}.refreshInterval"), &spec.refresh_interval, &GO_DURATION)?;
    if let Some(template) = &spec.target.template {
        secret_template(&format!("{at}.target.template"), template)?;
    }
    max_items(&format!("{at}.data"), &spec.data, 1000)?;
    for (i, data) in spec.data.iter().enumerate() {
        external_secret_data(&format!("{at}.data[{i}]"), data)?;
    }
    max_items(&format!("{at}.dataFrom"), &spec.data_from, 100)?;
    for (i, data_from) in spec.data_from.iter().enumerate() {
        external_secret_data_from(&format!("{at}.dataFrom[{i}]"), data_from)?;
    }
    if let Some(windows) = &spec.sync_windows {
        let here = format!("{at}.syncWindows.windows");
        require(!windows.windows.is_empty(), &here, "must have at least 1 item")?;
        for (i, window) in windows.windows.iter().enumerate() {
            min_length(&format!("{here}[{i}].schedule"), &window.schedule, 1)?;
            pattern(&format!("{here}[{i}].schedule"), &window.schedule, &WINDOW_SCHEDULE)?;
            pattern(&format!("{here}[{i}].duration"), &window.duration, &WINDOW_DURATION)?;
        }
    }
    max_items(&format!("{at}.rolloutRestartTargets"), &spec.rollout_restart_targets, 16)?;
    for (i, target) in spec.rollout_restart_targets.iter().enumerate() {
        rollout_restart_target(&format!("{at}.rolloutRestartTargets[{i}]"), target)?;
    }
    Ok(())
}

fn secret_template(at: &str, template: &SecretTemplate) -> Checked {
    let token_type = template.type_.as_deref() == Some("kubernetes.io/service-account-token");
    require(!token_type, at, TOKEN_TYPE_MESSAGE)?;
    let token_annotations = template.metadata.as_ref().is_some_and(|m| {
        m.annotations.contains_key("kubernetes.io/service-account.name")
            || m.annotations.contains_key("kubernetes.io/service-account.uid")
    });
    require(!token_annotations, at, TOKEN_ANNOTATIONS_MESSAGE)?;
    // The rule's expression is the same as the schema pattern of secretKey.
    let keys_ok = template.data.keys().all(|k| SECRET_KEY.is_match(k));
    require(keys_ok, &format!("{at}.data"), TEMPLATE_KEYS_MESSAGE)?;
    if let Some(metadata) = &template.metadata {
        max_items(&format!("{at}.metadata.finalizers"), &metadata.finalizers, 32)?;
    }
    for (i, from) in template.template_from.iter().enumerate() {
        template_from(&format!("{at}.templateFrom[{i}]"), from)?;
    }
    Ok(())
}

fn template_from(at: &str, from: &TemplateFrom) -> Checked {
    let sources = [from.config_map.is_some(), from.secret.is_some(), from.literal.is_some()];
    require(exactly_one(&sources), at, TEMPLATE_FROM_ONE_MESSAGE)?;
    if let Some(config_map) = &from.config_map {
        template_ref(&format!("{at}.configMap"), config_map)?;
    }
    if let Some(secret) = &from.secret {
        template_ref(&format!("{at}.secret"), secret)?;
    }
    Ok(())
}

fn template_ref(at: &str, template: &TemplateRef) -> Checked {
    length(&format!("{at}.name"), &template.name, 1, 253)?;
    require(!template.items.is_empty(), &format!("{at}.items"), "must not be empty")?;
    for (i, item) in template.items.iter().enumerate() {
        length(&format!("{at}.items[{i}].key"), &item.key, 1, 253)?;
    }
    Ok(())
}

fn external_secret_data(at: &str, data: &ExternalSecretData) -> Checked {
    let key_path = format!("{at}.secretKey");
    length(&key_path, &data.secret_key, 1, 253)?;
    pattern(&key_path, &data.secret_key, &SECRET_KEY)?;
    if let Some(store) = data.store() {
        length(&format!("{at}.sourceRef.storeRef.name"), &store.name, 1, 253)?;
    }
    remote_ref(&format!("{at}.remoteRef"), &data.remote_ref)
}

fn remote_ref(at: &str, remote: &RemoteRef) -> Checked {
    let key_path = format!("{at}.key");
    length(&key_path, &remote.key, 1, MAX_PATH)?;
    KEY.check(&key_path, &remote.key)?;
    RESERVED_SEGMENT.check(&key_path, &remote.key)?;
    if let Some(version) = &remote.version {
        pattern(&format!("{at}.version"), version, &VERSION)?;
    }
    Ok(())
}

fn external_secret_data_from(at: &str, from: &ExternalSecretDataFrom) -> Checked {
    if let Some(source) = &from.source_ref {
        let refs = [source.store_ref.is_some(), source.generator_ref.is_some()];
        require(exactly_one(&refs), &format!("{at}.sourceRef"), SOURCE_REF_ONE_MESSAGE)?;
    }
    let sources = [from.extract.is_some(), from.find.is_some(), from.generator().is_some()];
    require(exactly_one(&sources), at, DATA_FROM_ONE_MESSAGE)?;
    if let Some(extract) = &from.extract {
        remote_ref(&format!("{at}.extract"), extract)?;
    }
    if let Some(find) = &from.find {
        find_ref(&format!("{at}.find"), find)?;
    }
    if let Some(generator) = from.generator() {
        generator_ref(&format!("{at}.sourceRef.generatorRef"), generator)?;
    }
    if let Some(store) = from.store() {
        length(&format!("{at}.sourceRef.storeRef.name"), &store.name, 1, 253)?;
    }
    max_items(&format!("{at}.rewrite"), &from.rewrite, 100)?;
    for (i, rewrite) in from.rewrite.iter().enumerate() {
        let rewrite_at = format!("{at}.rewrite[{i}]");
        let steps = [rewrite.regexp.is_some(), rewrite.transform.is_some(), rewrite.merge.is_some()];
        require(exactly_one(&steps), &rewrite_at, REWRITE_ONE_MESSAGE)?;
        if let Some(regexp) = &rewrite.regexp {
            min_length(&format!("{rewrite_at}.regexp.source"), &regexp.source, 1)?;
        }
    }
    Ok(())
}

fn find_ref(at: &str, find: &FindRef) -> Checked {
    require(find.path.is_some() || find.name.is_some() || !find.tags.is_empty(), at, FIND_MESSAGE)?;
    if let Some(path) = &find.path {
        let path_path = format!("{at}.path");
        max_length(&path_path, path, MAX_PATH)?;
        FOLDER.check(&path_path, path)?;
        RESERVED_SEGMENT.check(&path_path, path)?;
    }
    if let Some(name) = &find.name {
        min_length(&format!("{at}.name.regexp"), &name.regexp, 1)?;
    }
    Ok(())
}

fn generator_ref(at: &str, generator: &GeneratorRef) -> Checked {
    pattern(&format!("{at}.apiVersion"), &generator.api_version, &GENERATOR_API_VERSION)?;
    length(&format!("{at}.name"), &generator.name, 1, 253)
}

fn rollout_restart_target(at: &str, target: &RolloutRestartTarget) -> Checked {
    let name_path = format!("{at}.name");
    length(&name_path, &target.name, 1, 253)?;
    OBJECT_NAME.check(&name_path, &target.name)
}

// ClusterExternalSecret

/// The rules of a ClusterExternalSecret's spec, including those of the
/// ExternalSecret spec it embeds.
pub fn cluster_external_secret(spec: &ClusterExternalSecretSpec) -> Result<(), Refusal> {
    let selects = spec.namespace_selectors.is_some() || spec.namespace_selector.is_some() || spec.namespaces.is_some();
    require(selects, "spec", NAMESPACES_MESSAGE)?;
    external_secret_at("spec.externalSecretSpec", &spec.external_secret_spec)?;
    if let Some(refresh_time) = &spec.refresh_time {
        pattern("spec.refreshTime", refresh_time, &GO_DURATION)?;
    }
    Ok(())
}
