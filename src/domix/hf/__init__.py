"""domix inside Hugging Face ``transformers.Trainer``: batches drawn by domix's mixture sampler.

    from domix.hf import MixtureCallback, MixtureDataset, PackedSource
    dataset = MixtureDataset(PackedSource(data.train), batch_size=16, method="proportional")
    trainer = Trainer(model=model, args=TrainingArguments(per_device_train_batch_size=16, max_steps=100, ...),
                      train_dataset=dataset, callbacks=[MixtureCallback(dataset)])

Online methods (rnb, dograph, odm, ...) need ``MixtureTrainer`` (the Trainer with domix's loss and
draws; hf/trainer.py):

    dataset = MixtureDataset(PackedSource.from_run(data), batch_size=16, method="rnb")
    trainer = MixtureTrainer(model=model, args=TrainingArguments(per_device_train_batch_size=16, ...),
                             train_dataset=dataset)

``examples/hf_trainer.py`` is a complete script. Needs ``accelerate`` (``pip install domix[hf]``).
"""

from .callback import MixtureCallback
from .dataset import ExampleSource, MixtureDataset, PackedSource
from .trainer import MixtureTrainer

__all__ = ["ExampleSource", "MixtureCallback", "MixtureDataset", "MixtureTrainer", "PackedSource"]
