from dlx.engine.run_folder import create_run_folder, safe_name


def test_names_from_configs_cannot_climb_out_of_the_output_folder(tmp_path):
    for experiment in ["../../escape", "/etc/passwd", "..", "a/../../b", "~root"]:
        folder = create_run_folder(tmp_path / "outputs", experiment)
        assert (tmp_path / "outputs") in folder.resolve().parents, experiment
        assert ".." not in folder.relative_to(tmp_path / "outputs").parts


def test_run_folders_launched_in_the_same_second_never_collide(tmp_path):
    folders = {create_run_folder(tmp_path, "same") for _ in range(50)}
    assert len(folders) == 50 and all((f / "checkpoints").is_dir() for f in folders)


def test_safe_name_keeps_readable_names():
    assert safe_name("mnist_cnn") == "mnist_cnn" and safe_name("lr=0.1+wd") == "lr=0.1+wd"
