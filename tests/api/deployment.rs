//! docker-compose.yml: the services, health checks, volumes and environment the production
//! run relies on. (No Docker engine runs here; `.ci/run` also has `docker-compose config`
//! parse the file when the tool is installed.)

use std::collections::BTreeSet;

use clap::CommandFactory as _;
use yaml_rust2::{Yaml, YamlLoader};

fn compose() -> Yaml {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml");
    YamlLoader::load_from_str(&text)
        .expect("valid YAML")
        .remove(0)
}

/// Every environment variable the server reads, from its command-line definition.
fn server_variables() -> BTreeSet<String> {
    user_api::config::Cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn services_have_health_checks_and_start_in_order() {
    let doc = compose();
    let services = &doc["services"];
    for name in ["api", "mysql", "redis"] {
        assert!(!services[name].is_badvalue(), "service {name} missing");
        assert!(
            !services[name]["healthcheck"]["test"].is_badvalue(),
            "service {name} has no health check"
        );
    }
    for dependency in ["mysql", "redis"] {
        assert_eq!(
            services["api"]["depends_on"][dependency]["condition"].as_str(),
            Some("service_healthy"),
            "api must wait for {dependency} to be healthy"
        );
    }
    assert!(
        services["mysql"]["image"]
            .as_str()
            .unwrap()
            .starts_with("mysql:8")
    );
    assert!(
        services["redis"]["image"]
            .as_str()
            .unwrap()
            .starts_with("redis:7")
    );
    assert!(
        !services["api"]["build"].is_badvalue(),
        "api is built from the Dockerfile"
    );
}

#[test]
fn data_lives_in_named_volumes_and_redis_persists() {
    let doc = compose();
    let volumes = doc["volumes"].as_hash().expect("top-level volumes");
    let mounted = |service: &str, target: &str| {
        doc["services"][service]["volumes"]
            .as_vec()
            .unwrap_or_else(|| panic!("{service} has no volumes"))
            .iter()
            .filter_map(Yaml::as_str)
            .find(|v| v.ends_with(&format!(":{target}")))
            .map(|v| v.split(':').next().unwrap().to_owned())
    };
    let mysql = mounted("mysql", "/var/lib/mysql").expect("MySQL data volume");
    let redis = mounted("redis", "/data").expect("Redis data volume");
    for name in [&mysql, &redis] {
        assert!(
            volumes.contains_key(&Yaml::String(name.clone())),
            "{name} is not a named volume"
        );
    }
    let command: Vec<&str> = doc["services"]["redis"]["command"]
        .as_vec()
        .expect("redis command")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let appendonly = command
        .iter()
        .position(|a| *a == "--appendonly")
        .expect("--appendonly");
    assert_eq!(command[appendonly + 1], "yes");
}

#[test]
fn api_sets_only_variables_the_server_reads() {
    let doc = compose();
    let known = server_variables();
    let environment = doc["services"]["api"]["environment"]
        .as_hash()
        .expect("api environment map");
    assert!(!environment.is_empty());
    for key in environment.keys() {
        let key = key.as_str().expect("string key");
        assert!(
            known.contains(key),
            "docker-compose.yml sets {key}, which the server does not read"
        );
    }
    for required in [
        "DATABASE_URL",
        "REDIS_URL",
        "JWT_SECRET",
        "MFA_ENCRYPTION_KEY",
        "BIND",
    ] {
        assert!(
            environment.contains_key(&Yaml::String(required.to_owned())),
            "api needs {required}"
        );
    }
}

#[test]
fn env_example_documents_every_variable_compose_interpolates() {
    let compose_text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
            .unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    let gitignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.gitignore")).unwrap();
    let dockerignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.dockerignore")).unwrap();
    for rest in compose_text.split("${").skip(1) {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            example.contains(&name),
            ".env.example does not mention {name}"
        );
    }
    assert!(
        gitignore.lines().any(|l| l.trim() == ".env"),
        ".env must be ignored by git"
    );
    assert!(
        dockerignore.lines().any(|l| l.trim() == ".env"),
        ".env must be ignored by docker"
    );
    assert!(
        dockerignore
            .lines()
            .any(|l| l.trim().trim_end_matches('/') == "target")
    );
}

#[test]
fn dockerfile_is_multi_stage_and_runs_unprivileged() {
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    assert!(
        dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")) >= 2
    );
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "root");
    assert_ne!(user.trim(), "0");
}

#[test]
fn mail_goes_to_the_bundled_mailpit_until_configured() {
    let doc = compose();
    let mailpit = &doc["services"]["mailpit"];
    assert!(
        mailpit["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("axllent/mailpit:")),
        "a pinned Mailpit image"
    );
    let ports: Vec<&str> = mailpit["ports"]
        .as_vec()
        .expect("mailpit ports")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(ports.iter().any(|p| p.ends_with(":8025")), "{ports:?}");
    let smtp = doc["services"]["api"]["environment"]["SMTP_URL"]
        .as_str()
        .expect("api SMTP_URL");
    assert_eq!(smtp, "${SMTP_URL:-smtp://mailpit:1025}");
}
